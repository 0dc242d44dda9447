//! CDN TLS: HTTP/1.1 and HTTP/2 by ALPN, certificates chosen by SNI, development certificates.

use http::Version;

use crate::cdn_harness::*;

#[tokio::test]
async fn https_serves_http1_and_http2_chosen_by_alpn() {
    let origin = Origin::start().await;
    origin.route("/", Reply::ok("hello").cc("max-age=60"));
    let cdn = Cdn::site(&origin, "").await;

    let h1 = cdn.get("/").send().await;
    assert_eq!(h1.status, 200);
    assert_eq!(h1.version, Version::HTTP_11);
    assert_eq!(h1.text(), "hello");
    assert_eq!(h1.header("via"), Some("1.1 edgewise"));

    let h2 = cdn.get("/").h2().send().await;
    assert_eq!(h2.status, 200);
    assert_eq!(h2.version, Version::HTTP_2);
    assert_eq!(h2.text(), "hello");
    assert_eq!(h2.header("via"), Some("2 edgewise"));
    assert_eq!(h2.x_cache(), HIT);
    assert_eq!(origin.hits("/"), 1);
}

#[tokio::test]
async fn plain_http_listener_serves_http1() {
    let origin = Origin::start().await;
    origin.route("/", Reply::ok("clear").cc("max-age=60"));
    let cdn = Cdn::site(&origin, "").await;
    let response = cdn.get("/").plain().send().await;
    assert_eq!(response.status, 200);
    assert_eq!(response.version, Version::HTTP_11);
    assert_eq!(response.text(), "clear");
}

/// Two certificates, neither generated: `a.test` first, `b.test` second.
async fn two_cert_cdn() -> (Cdn, Vec<u8>, Vec<u8>) {
    let a = rcgen::generate_simple_self_signed(vec!["a.test".to_string()]).unwrap();
    let b = rcgen::generate_simple_self_signed(vec!["b.test".to_string()]).unwrap();
    let toml = r#"[cdn]
https_listen = ["127.0.0.1:0"]

[[cdn.certs]]
cert = "certs/a.pem"
key = "certs/a-key.pem"

[[cdn.certs]]
cert = "certs/b.pem"
key = "certs/b-key.pem"

[[cdn.distributions]]
id = "a"
hosts = ["a.test", "b.test"]
[[cdn.distributions.origins]]
id = "app"
url = "http://127.0.0.1:9"
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#;
    let (a_pem, a_key) = (a.cert.pem(), a.signing_key.serialize_pem());
    let (b_pem, b_key) = (b.cert.pem(), b.signing_key.serialize_pem());
    let cdn = Cdn::start_with(
        toml,
        &[
            ("certs/a.pem", a_pem.as_bytes()),
            ("certs/a-key.pem", a_key.as_bytes()),
            ("certs/b.pem", b_pem.as_bytes()),
            ("certs/b-key.pem", b_key.as_bytes()),
        ],
    )
    .await;
    (cdn, a.cert.der().to_vec(), b.cert.der().to_vec())
}

#[tokio::test]
async fn sni_picks_the_certificate_whose_names_match() {
    let (cdn, a, b) = two_cert_cdn().await;
    assert_eq!(cdn.presented_cert(Some("b.test")).await.as_ref(), &b[..]);
    assert_eq!(cdn.presented_cert(Some("a.test")).await.as_ref(), &a[..]);
    // Verified end to end too: the client trusts both and checks the name.
    cdn.tls("b.test", &[b"http/1.1"]).await.unwrap();
    cdn.tls("a.test", &[b"h2"]).await.unwrap();
}

#[tokio::test]
async fn clients_without_sni_or_with_an_unknown_name_get_the_first_certificate() {
    let (cdn, a, _b) = two_cert_cdn().await;
    assert_eq!(cdn.presented_cert(None).await.as_ref(), &a[..]);
    assert_eq!(
        cdn.presented_cert(Some("unknown.test")).await.as_ref(),
        &a[..]
    );
}

#[tokio::test]
async fn dev_certificates_are_written_when_missing_and_cover_every_host() {
    let origin = Origin::start().await;
    origin.route("/", Reply::ok("covered").cc("max-age=60"));
    let toml = config(
        "",
        &format!(
            r#"{}
[[cdn.distributions]]
id = "other"
hosts = ["Other.Test"]
[[cdn.distributions.origins]]
id = "app"
url = "{}"
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#,
            site(&origin.url(), ""),
            origin.url()
        ),
    );
    let cdn = Cdn::start(&toml).await;
    let cert = cdn.dir.path().join("certs/cert.pem");
    let key = cdn.dir.path().join("certs/key.pem");
    assert!(cert.is_file(), "{} written", cert.display());
    assert!(key.is_file(), "{} written", key.display());
    // The client trusts only the written certificate and checks each name.
    for name in ["site.test", "other.test", "localhost"] {
        let response = cdn.get("/").sni(name).host(name).send().await;
        assert_eq!(response.status, 200, "SNI {name}");
        assert_eq!(response.text(), "covered");
    }
    let ip = cdn.presented_cert(None).await;
    assert_eq!(ip.as_ref(), read_certs(&cert)[0].as_ref());
    // Written once: a restart with the files present keeps them.
    let before = std::fs::read(&cert).unwrap();
    drop(edgewise::cdn::CdnServer::bind(&load_cdn(&cdn.dir.path().join("edgewise.toml"))).unwrap());
    assert_eq!(std::fs::read(&cert).unwrap(), before);
}

#[tokio::test]
async fn missing_certificates_are_an_error_when_dev_certs_are_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edgewise.toml");
    std::fs::write(
        &path,
        config(
            "generate_dev_certs = false",
            &site("http://127.0.0.1:9", ""),
        ),
    )
    .unwrap();
    let error = match edgewise::cdn::CdnServer::bind(&load_cdn(&path)) {
        Ok(_) => panic!("bind should fail without certificate files"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("cert.pem"), "{error}");
    assert!(!dir.path().join("certs/cert.pem").exists());
}
