//! `edgewise-dns ds ZONE`: the key is made on first use in BIND's format, and the DS it
//! prints is the one BIND's and ldns's own tools compute from the key file.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_edgewise-dns");

fn run(command: &mut Command, package: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e} (install the Debian package {package})"));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The DS fields after `DS` in a record line, the digest uppercase and in one piece.
fn ds_fields(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "DS").expect("a DS record") + 1;
    let (fields, digest) = words[at..].split_at(3);
    format!("{} {}", fields.join(" "), digest.concat().to_uppercase())
}

fn ds(config: &Path, zone: &str) -> std::process::Output {
    Command::new(BIN)
        .args(["ds", zone, "--config"])
        .arg(config)
        .output()
        .expect("edgewise-dns runs")
}

#[test]
fn ds_prints_what_dnssec_dsfromkey_and_ldns_key2ds_compute_from_the_key_file() {
    for algorithm in ["ecdsap256sha256", "ed25519"] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("edgewise.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[dns]
data_dir = "data"
[[dns.zones]]
name = "home.test"
dnssec = {{ algorithm = "{algorithm}" }}
records = [{{ name = "@", type = "NS", values = ["ns1.home.test."] }}]
"#
            ),
        )
        .unwrap();
        let output = ds(&config, "home.test");
        assert!(output.status.success(), "{output:?}");
        let printed = String::from_utf8_lossy(&output.stdout).into_owned();
        let lines: Vec<&str> = printed.lines().collect();
        assert_eq!(lines.len(), 2, "{printed}");
        assert!(lines[1].contains(" IN DNSKEY 257 3 "), "{printed}");
        // Printed again, the same key: it was kept, not made anew.
        assert_eq!(
            String::from_utf8_lossy(&ds(&config, "home.test").stdout),
            printed
        );

        let keys = dir.path().join("data/dns-keys");
        let key_file = std::fs::read_dir(&keys)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "key"))
            .expect("a .key file");
        let bind = run(
            Command::new("dnssec-dsfromkey").arg("-2").arg(&key_file),
            "bind9-utils",
        );
        let ldns = run(
            Command::new("ldns-key2ds")
                .args(["-n", "-2"])
                .arg(&key_file),
            "ldnsutils",
        );
        assert_eq!(
            ds_fields(lines[0]),
            ds_fields(&bind),
            "{algorithm}: dnssec-dsfromkey"
        );
        assert_eq!(
            ds_fields(lines[0]),
            ds_fields(&ldns),
            "{algorithm}: ldns-key2ds"
        );
    }
}

#[test]
fn ds_of_an_unknown_or_unsigned_zone_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewise.toml");
    std::fs::write(
        &config,
        r#"
[dns]
[[dns.zones]]
name = "home.test"
records = [{ name = "@", type = "NS", values = ["ns1.home.test."] }]
"#,
    )
    .unwrap();
    for (zone, says) in [("home.test", "not signed"), ("other.test", "no zone")] {
        let output = ds(&config, zone);
        assert_eq!(output.status.code(), Some(64), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }
}

fn key(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("key")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("edgewise-dns runs")
}

fn tags(ds_output: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(ds_output)
        .lines()
        .filter(|l| l.contains(" DS "))
        .map(|l| ds_fields(l).split(' ').next().unwrap().to_string())
        .collect()
}

/// A roll: `key roll` adds a key that, served, is published and signs beside the old one
/// (a resolver trusting only the new key validates), and `key retire` takes the old one
/// out; the last key cannot be retired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_roll_publishes_and_signs_with_both_keys_then_retires_the_old_one() {
    let keys = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[dns]
listen = ["127.0.0.1:0"]
[[dns.zones]]
name = "roll.test"
dnssec = {{ keys_dir = "{}" }}
records = [
  {{ name = "@", type = "NS", values = ["ns1.roll.test."] }},
  {{ name = "ns1", type = "A", values = ["192.0.2.1"] }},
]
"#,
        keys.path().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgewise.toml");
    std::fs::write(&config, &text).unwrap();
    let old = tags(&ds(&config, "roll.test").stdout);
    let rolled = key(&config, &["roll", "roll.test"]);
    assert!(rolled.status.success(), "{rolled:?}");
    let new = tags(&rolled.stdout);
    let both = tags(&ds(&config, "roll.test").stdout);
    assert_eq!(
        (old.len(), new.len(), both.len()),
        (1, 1, 2),
        "{old:?} {new:?} {both:?}"
    );
    assert!(both.contains(&old[0]) && both.contains(&new[0]));

    let server = crate::harness::start(&text, &[]).await;
    let port = server.addr().port().to_string();
    let dig = |args: &[&str]| {
        let mut command = Command::new("dig");
        command
            .args(["@127.0.0.1", "-p", &port, "+short", "+dnssec"])
            .args(args);
        run(&mut command, "bind9-dnsutils")
    };
    assert_eq!(
        dig(&["roll.test", "DNSKEY"])
            .lines()
            .filter(|l| l.starts_with("257 "))
            .count(),
        2
    );
    assert_eq!(
        dig(&["roll.test", "SOA"])
            .lines()
            .filter(|l| l.starts_with("SOA "))
            .count(),
        2
    );
    // A resolver that knows only the new key validates.
    let new_key = String::from_utf8_lossy(&key_line(&config, &new[0]))
        .split_whitespace()
        .skip(7)
        .collect::<String>();
    let anchor = dir.path().join("anchor.conf");
    std::fs::write(
        &anchor,
        format!("trust-anchors {{ roll.test. static-key 257 3 13 \"{new_key}\"; }};\n"),
    )
    .unwrap();
    let mut delv = Command::new("delv");
    delv.args(["@127.0.0.1", "-p", &port, "-a"])
        .arg(&anchor)
        .args(["+root=roll.test", "ns1.roll.test", "A"]);
    let validated = delv.output().expect("delv (bind9-dnsutils)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
    assert!(
        said.contains("; fully validated") && said.contains("192.0.2.1"),
        "{said}"
    );
    drop(server);

    let retired = key(&config, &["retire", "roll.test", &old[0]]);
    assert!(retired.status.success(), "{retired:?}");
    assert_eq!(tags(&ds(&config, "roll.test").stdout), new);
    assert!(keys.path().join("retired").read_dir().unwrap().count() == 2);
    let last = key(&config, &["retire", "roll.test", &new[0]]);
    assert_eq!(last.status.code(), Some(1), "{last:?}");
    assert!(String::from_utf8_lossy(&last.stderr).contains("last key"));
}

/// The DNSKEY line `ds` prints for the key `tag`.
fn key_line(config: &Path, tag: &str) -> Vec<u8> {
    let output = ds(config, "roll.test").stdout;
    let text = String::from_utf8_lossy(&output).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let at = (lines.iter())
        .position(|l| l.contains(" DS ") && ds_fields(l).starts_with(&format!("{tag} ")))
        .expect("the key's DS line");
    lines[at + 1].as_bytes().to_vec()
}
