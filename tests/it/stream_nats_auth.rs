//! Connecting to NATS: `nats = { nkey, creds, tls }` against Debian's nats-server set up
//! each way — edgewise-cdn connects with the right key, file or certificate and serves puts
//! and reads through the cluster; with a wrong one, or more replicas than servers, it exits
//! at start saying why.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::nats::Nats;
use crate::stream_harness::Client;
use crate::stream_process::{BIN, Server, write_config};

/// `[stream]` on the nats backend, one copy, with `auth` (key = value, TOML) in `nats = {}`.
fn config(nats: &Nats, auth: &str) -> String {
    with_keys(nats, &format!("replicas = 1, {auth}"))
}

/// `[stream]` on the nats backend with `keys` after the servers in `nats = { ... }`.
fn with_keys(nats: &Nats, keys: &str) -> String {
    let keys = if keys.is_empty() {
        String::new()
    } else {
        format!(", {keys}")
    };
    format!(
        r#"[stream]
listen = ["127.0.0.1:0"]
data_dir = "data"
backend = "nats"
nats = {{ servers = [{}]{keys} }}

[[stream.streams]]
name = "orders"
shards = 1
"#,
        nats.servers()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_three_replicas_on_a_lone_server_are_refused_with_advice() {
    let nats = Nats::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let said = refused(dir.path(), &with_keys(&nats, "")).await;
    assert!(
        said.contains("nats.replicas = 1 for a lone server"),
        "{said}"
    );
}

/// A record put through a process on `config` comes back from it.
async fn round_trip(dir: &Path, config: &str) {
    let server = Server::start(&write_config(dir, config));
    let mut client = Client::new(server.addr);
    let records = [("k".to_owned(), None, b"paid".to_vec())];
    let placed = client
        .put_records("orders", &records)
        .await
        .expect("PutRecords");
    assert!(placed[0].is_ok(), "{placed:?}");
    let got = client.read_all("orders", 0).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].data, b"paid");
}

/// Runs edgewise-cdn on `config`, which must exit at start; returns what it said.
async fn refused(dir: &Path, config: &str) -> String {
    let path = write_config(dir, config);
    let run = tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .env("NO_COLOR", "1")
        .env_remove("EDGEWISE_CONFIG")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("edgewise-cdn gives up within 30 s")
        .expect("run edgewise-cdn");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "started anyway:\n{stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nkey_seed_file_authenticates_and_another_key_is_refused() {
    let user = nkeys::KeyPair::new_user();
    let extra = format!(
        "authorization {{ users = [ {{ nkey: {} }} ] }}\n",
        user.public_key()
    );
    let nats = Nats::start_with(1, tempfile::tempdir().unwrap(), &extra).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("edgewise.nk"), user.seed().unwrap()).unwrap();
    round_trip(dir.path(), &config(&nats, "nkey = \"edgewise.nk\"")).await;

    let stranger = nkeys::KeyPair::new_user();
    std::fs::write(dir.path().join("stranger.nk"), stranger.seed().unwrap()).unwrap();
    let said = refused(dir.path(), &config(&nats, "nkey = \"stranger.nk\"")).await;
    assert!(said.contains("authorization"), "{said}");

    std::fs::write(dir.path().join("public.nk"), user.public_key()).unwrap();
    let said = refused(dir.path(), &config(&nats, "nkey = \"public.nk\"")).await;
    assert!(said.contains("does not hold a user NKey seed"), "{said}");
}

/// A JWT as NATS decodes it: `claims` signed by `issuer` (ed25519, base64url parts).
fn jwt(issuer: &nkeys::KeyPair, claims: serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let signature = issuer.sign(signed.as_bytes()).expect("sign");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Claims of a JWT about `subject`, issued by `issuer`, of kind `nats` (its `type` in it).
fn claims(issuer: &nkeys::KeyPair, subject: &str, nats: serde_json::Value) -> serde_json::Value {
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({
        "jti": format!("{subject}{iat}"),
        "iat": iat,
        "iss": issuer.public_key(),
        "sub": subject,
        "name": "edgewise-test",
        "nats": nats,
    })
}

/// A `.creds` file as `nsc` writes it: the user's JWT and NKey seed.
fn creds_file(user_jwt: &str, user: &nkeys::KeyPair) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creds_file_authenticates_in_operator_mode() {
    // Operator mode as `nsc` sets it up: an operator, its system account, an account with
    // JetStream, a user of it.
    let operator = nkeys::KeyPair::new_operator();
    let system = nkeys::KeyPair::new_account();
    let account = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let operator_jwt = jwt(
        &operator,
        claims(
            &operator,
            &operator.public_key(),
            json!({"type": "operator", "version": 2}),
        ),
    );
    let unlimited = json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
        "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    });
    let account_jwt = jwt(
        &operator,
        claims(
            &operator,
            &account.public_key(),
            json!({"limits": unlimited, "type": "account", "version": 2}),
        ),
    );
    let system_jwt = jwt(
        &operator,
        claims(
            &operator,
            &system.public_key(),
            json!({"type": "account", "version": 2}),
        ),
    );
    let user_claims = json!({
        "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
        "type": "user", "version": 2,
    });
    let user_jwt = jwt(
        &account,
        claims(&account, &user.public_key(), user_claims.clone()),
    );
    let dir = tempfile::tempdir().unwrap();
    let nats_dir = tempfile::tempdir().unwrap();
    std::fs::write(nats_dir.path().join("operator.jwt"), &operator_jwt).unwrap();
    let extra = format!(
        "operator: \"{}\"\nsystem_account: {system}\nresolver: MEMORY\n\
         resolver_preload: {{ {system}: \"{system_jwt}\", {account}: \"{account_jwt}\" }}\n",
        nats_dir.path().join("operator.jwt").display(),
        system = system.public_key(),
        account = account.public_key(),
    );
    let nats = Nats::start_with(1, nats_dir, &extra).await;
    std::fs::write(
        dir.path().join("edgewise.creds"),
        creds_file(&user_jwt, &user),
    )
    .unwrap();
    round_trip(dir.path(), &config(&nats, "creds = \"edgewise.creds\"")).await;

    // A user signed by an account the operator does not know.
    let rogue = nkeys::KeyPair::new_account();
    let rogue_jwt = jwt(&rogue, claims(&rogue, &user.public_key(), user_claims));
    std::fs::write(
        dir.path().join("rogue.creds"),
        creds_file(&rogue_jwt, &user),
    )
    .unwrap();
    let said = refused(dir.path(), &config(&nats, "creds = \"rogue.creds\"")).await;
    assert!(said.contains("authorization"), "{said}");
}

/// A CA, nats-server's certificate for 127.0.0.1 and a client certificate, all signed by it.
fn write_tls_files(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    (ca.distinguished_name).push(rcgen::DnType::CommonName, "edgewise test CA for NATS");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    for (name, san, usage) in [
        (
            "server",
            "127.0.0.1",
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        ),
        (
            "client",
            "edgewise",
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ),
    ] {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec![san.to_owned()]).unwrap();
        leaf.extended_key_usages = vec![usage];
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_client_certificate_connects_and_without_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_tls_files(dir.path());
    let file = |name: &str| dir.path().join(name).display().to_string();
    let extra = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true }}\n",
        file("server.pem"),
        file("server.key"),
        file("ca.pem"),
    );
    let nats = Nats::start_with(1, tempfile::tempdir().unwrap(), &extra).await;
    let tls = "tls = { ca = \"ca.pem\", cert = \"client.pem\", key = \"client.key\" }";
    round_trip(dir.path(), &config(&nats, tls)).await;

    let said = refused(dir.path(), &config(&nats, "tls = { ca = \"ca.pem\" }")).await;
    assert!(said.contains("BadCertificate"), "{said}");
    // The server's certificate is checked: another CA does not vouch for it.
    let other = tempfile::tempdir().unwrap();
    write_tls_files(other.path());
    std::fs::copy(other.path().join("ca.pem"), dir.path().join("other-ca.pem")).unwrap();
    let wrong_ca = "tls = { ca = \"other-ca.pem\", cert = \"client.pem\", key = \"client.key\" }";
    let said = refused(dir.path(), &config(&nats, wrong_ca)).await;
    assert!(said.contains("invalid peer certificate"), "{said}");
}
