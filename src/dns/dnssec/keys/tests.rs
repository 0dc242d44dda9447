use ring::signature::{ECDSA_P256_SHA256_FIXED, ED25519, UnparsedPublicKey};

use super::*;

fn zone(text: &str) -> Name {
    Name::from_ascii(text).expect("a test name")
}

/// RFC 6605 §6.1's example key, in BIND's files as `dnssec-keygen` would write them.
const RFC_6605_PUBLIC: &str =
    "GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==";
const RFC_6605_PRIVATE: &str = "GU6SnQ/Ou+xC5RumuIUIuJZteXT2z0O/ok1s38Et6mQ=";

fn write_rfc_6605_key(dir: &Path) {
    fs::write(
        dir.join("Kexample.net.+013+55648.key"),
        format!("; a key\nexample.net. 3600 IN DNSKEY 257 3 13 {RFC_6605_PUBLIC}\n"),
    )
    .unwrap();
    fs::write(
        dir.join("Kexample.net.+013+55648.private"),
        format!("Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: {RFC_6605_PRIVATE}\n"),
    )
    .unwrap();
}

#[test]
fn the_rfc_6605_example_key_loads_with_its_tag_and_ds() {
    let dir = tempfile::tempdir().unwrap();
    write_rfc_6605_key(dir.path());
    let origin = zone("example.net.");
    let keys = load_or_generate(dir.path(), &origin, DnssecAlgorithm::EcdsaP256Sha256).unwrap();
    assert_eq!(keys.len(), 1, "loaded, none generated");
    assert_eq!(keys[0].tag(), 55648);
    assert_eq!(
        keys[0].ds_text(&origin),
        "example.net. 3600 IN DS 55648 13 2 B4C8C1FE2E7477127B27115656AD6256F424625BF5C1E2770CE6D6E37DF61D17"
    );
    assert!(keys[0].dnskey_text(&origin).ends_with(RFC_6605_PUBLIC));
}

#[test]
fn a_generated_key_is_written_loaded_again_the_same_and_signs_verifiably() {
    for (algorithm, verifier) in [
        (
            DnssecAlgorithm::EcdsaP256Sha256,
            &ECDSA_P256_SHA256_FIXED as &dyn ring::signature::VerificationAlgorithm,
        ),
        (DnssecAlgorithm::Ed25519, &ED25519),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let origin = zone("Home.Test.");
        let made = load_or_generate(dir.path(), &origin, algorithm).unwrap();
        let again = load_or_generate(dir.path(), &origin, algorithm).unwrap();
        assert_eq!((made.len(), again.len()), (1, 1));
        assert_eq!(made[0].dnskey_rdata(), again[0].dnskey_rdata());
        assert_eq!(made[0].tag(), again[0].tag());
        let files: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let base = format!("Khome.test.+{:03}+{:05}", algorithm.number(), made[0].tag());
        assert!(files.contains(&format!("{base}.key")), "{files:?}");
        assert!(files.contains(&format!("{base}.private")), "{files:?}");
        let mode = fs::metadata(dir.path().join(format!("{base}.private"))).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        let data = b"what an RRSIG signs";
        let signature = again[0].sign(data);
        let public = &made[0].dnskey_rdata()[4..];
        let public = match algorithm {
            DnssecAlgorithm::EcdsaP256Sha256 => [&[4u8][..], public].concat(),
            DnssecAlgorithm::Ed25519 => public.to_vec(),
        };
        UnparsedPublicKey::new(verifier, &public)
            .verify(data, &signature)
            .expect("the signature verifies with the DNSKEY's public key");
    }
}

#[test]
fn broken_key_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_rfc_6605_key(dir.path());
    let private = dir.path().join("Kexample.net.+013+55648.private");
    fs::write(
        &private,
        "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: AAAA\n",
    )
    .unwrap();
    let load = || {
        load_or_generate(
            dir.path(),
            &zone("example.net."),
            DnssecAlgorithm::EcdsaP256Sha256,
        )
        .unwrap_err()
        .to_string()
    };
    let error = load();
    assert!(error.contains("Kexample.net.+013+55648.private"), "{error}");
    fs::write(&private, "garbage").unwrap();
    let error = load();
    assert!(error.contains("algorithm none"), "{error}");
}
