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
