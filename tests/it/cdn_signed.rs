//! Signed URLs and signed cookies (CloudFront's trusted key groups): what is accepted, every
//! way a signature can be wrong (each refused with 403 before the origin is asked), the cache
//! staying one entry per object whatever the signature, and compatibility with AWS's own
//! signer (botocore) and with the `edgewise-cdn sign-url` / `sign-cookies` subcommands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use edgewise::cdn::signed::{self, SignPolicy};

use crate::cdn_harness::*;

const BIN: &str = env!("CARGO_BIN_EXE_edgewise-cdn");
/// The two keys of the "signers" group (rotation: old and new).
pub(crate) const K1: &str = "K1OLDSIGNER";
const K2: &str = "K2NEWSIGNER";
/// A key id no group has.
const K3: &str = "K3STRANGER";
pub(crate) const SECRET_A: &str = "secret object a";
const SECRET_B: &str = "secret object b";

// ------------------------------------------------------------------ keys

/// An RSA 2048 key pair as PEM text.
pub(crate) struct KeyPair {
    private_pem: String,
    public_pem: String,
}

pub(crate) struct Keys {
    pub(crate) k1: KeyPair,
    k2: KeyPair,
    /// In no key group.
    stranger: KeyPair,
}

/// Runs `program args` with `input` on stdin; panics unless it succeeds.
fn pipe(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn generate_pair() -> KeyPair {
    let private = pipe("openssl", &["genrsa", "2048"], b"");
    let public = pipe("openssl", &["rsa", "-pubout"], &private);
    KeyPair {
        private_pem: String::from_utf8(private).unwrap(),
        public_pem: String::from_utf8(public).unwrap(),
    }
}

/// Generated once per test run (`openssl genrsa` takes a while).
pub(crate) fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        k1: generate_pair(),
        k2: generate_pair(),
        stranger: generate_pair(),
    })
}

// ------------------------------------------------------------------ the signed distribution

/// `/private/*` needs a signature from group "signers" (keys K1 and K2; all query strings
/// in the cache key, so stripped signing parameters would show); everything else is public.
fn signed_config(origin: &Origin, settings: &str) -> String {
    config(
        &format!(
            r#"key_groups = [{{ id = "signers", keys = [{{ id = "{K1}", public_key = "keys/k1-public.pem" }}, {{ id = "{K2}", public_key = "keys/k2-public.pem" }}] }}]
{settings}"#
        ),
        &format!(
            r#"[[cdn.distributions]]
id = "site"
hosts = ["{SITE}", "localhost"]

[[cdn.distributions.origins]]
id = "app"
url = "{url}"

[[cdn.distributions.behaviors]]
path = "/private/*"
origin = "app"
trusted_key_groups = ["signers"]
cache_key = {{ query_strings = "all" }}

[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#,
            url = origin.url()
        ),
    )
}

/// The origin with two cacheable private objects, and the CDN with `settings` in `[cdn]`.
/// The private keys are written beside the config (`keys/k1-private.pem`, ...) for the
/// external signers.
pub(crate) async fn setup(settings: &str) -> (Origin, Cdn) {
    let origin = Origin::start().await;
    origin.route("/private/a.txt", Reply::ok(SECRET_A).cc("max-age=300"));
    origin.route("/private/b.txt", Reply::ok(SECRET_B).cc("max-age=300"));
    origin.route("/public.txt", Reply::ok("public").cc("max-age=300"));
    let k = keys();
    let cdn = Cdn::start_with(
        &signed_config(&origin, settings),
        &[
            ("keys/k1-public.pem", k.k1.public_pem.as_bytes()),
            ("keys/k2-public.pem", k.k2.public_pem.as_bytes()),
            ("keys/k1-private.pem", k.k1.private_pem.as_bytes()),
            ("keys/k2-private.pem", k.k2.private_pem.as_bytes()),
            ("keys/k3-private.pem", k.stranger.private_pem.as_bytes()),
        ],
    )
    .await;
    (origin, cdn)
}

// ------------------------------------------------------------------ signing helpers

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `https://site.test:<port>`: what the viewer's URL starts with.
fn base(cdn: &Cdn) -> String {
    format!("https://{SITE}:{}", cdn.https_port())
}

/// The full URL of `path_and_query` on the CDN.
pub(crate) fn url(cdn: &Cdn, path_and_query: &str) -> String {
    format!("{}{path_and_query}", base(cdn))
}

/// The path and query of a full URL on the CDN.
pub(crate) fn target(cdn: &Cdn, url: &str) -> String {
    url.strip_prefix(&base(cdn))
        .unwrap_or_else(|| panic!("{url} does not start with {}", base(cdn)))
        .to_string()
}

fn sign_url(url: &str, key_id: &str, pair: &KeyPair, policy: &SignPolicy) -> String {
    let key = signed::parse_private_key_pem(&pair.private_pem)
        .unwrap_or_else(|e| panic!("parse_private_key_pem: {e:?}"));
    signed::sign_url(url, key_id, &key, policy).unwrap_or_else(|e| panic!("sign_url({url}): {e:?}"))
}

pub(crate) fn canned(url: &str, key_id: &str, pair: &KeyPair, expires: u64) -> String {
    sign_url(url, key_id, pair, &SignPolicy::Canned { expires })
}

fn custom(url: &str, key_id: &str, pair: &KeyPair, json: &str) -> String {
    sign_url(
        url,
        key_id,
        pair,
        &SignPolicy::Custom {
            json: json.to_string(),
        },
    )
}

/// A custom policy for `resource` valid until `less_than` plus `extra` conditions (JSON
/// members, e.g. `"IpAddress":{"AWS:SourceIp":"10.0.0.0/8"}`).
fn policy(resource: &str, less_than: u64, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(",{extra}")
    };
    format!(
        r#"{{"Statement":[{{"Resource":"{resource}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{less_than}}}{extra}}}}}]}}"#
    )
}

/// The signed cookies for `resource`, as one Cookie header.
fn cookies(resource: &str, key_id: &str, pair: &KeyPair, policy: &SignPolicy) -> String {
    let key = signed::parse_private_key_pem(&pair.private_pem)
        .unwrap_or_else(|e| panic!("parse_private_key_pem: {e:?}"));
    let cookies = signed::sign_cookies(resource, key_id, &key, policy)
        .unwrap_or_else(|e| panic!("sign_cookies({resource}): {e:?}"));
    cookie_header(cookies.iter().map(|(n, v)| (*n, v.as_str())))
}

fn cookie_header<'a>(cookies: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    cookies
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The value of query parameter `name` in `url`.
fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")).map(str::to_string))
}

/// `url` with query parameter `name`'s value replaced by `f(old)`.
fn with_param(url: &str, name: &str, f: impl Fn(&str) -> String) -> String {
    let (head, query) = url
        .split_once('?')
        .unwrap_or_else(|| panic!("{url} has no query"));
    let prefix = format!("{name}=");
    let mut found = false;
    let params: Vec<String> = query
        .split('&')
        .map(|pair| match pair.strip_prefix(&prefix) {
            Some(value) => {
                found = true;
                format!("{prefix}{}", f(value))
            }
            None => pair.to_string(),
        })
        .collect();
    assert!(found, "{url} has no {name} parameter");
    format!("{head}?{}", params.join("&"))
}

/// One character in the middle of `text` replaced by another character of the
/// CloudFront base64 alphabet.
fn flip(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// The signing parameters never reach the origin.
fn assert_unsigned_at_origin(origin: &Origin, path: &str, expected_uri: &str) {
    let seen = origin.last(path);
    assert_eq!(seen.uri, expected_uri, "the origin's request target");
    for name in [
        "Expires",
        "Signature",
        "Key-Pair-Id",
        "Policy",
        "Hash-Algorithm",
    ] {
        assert!(
            !seen.uri.contains(&format!("{name}=")),
            "{name} reached the origin: {}",
            seen.uri
        );
    }
    let cookie = seen.header("cookie").unwrap_or("");
    assert!(
        !cookie.contains("CloudFront-"),
        "signed cookies reached the origin: {cookie}"
    );
}

// ------------------------------------------------------------------ accepted

#[tokio::test]
async fn a_canned_policy_url_is_served_and_the_origin_sees_the_path_without_signing_parameters() {
    let (origin, cdn) = setup("").await;
    let signed = canned(
        &url(&cdn, "/private/a.txt?v=1"),
        K1,
        &keys().k1,
        now() + 3600,
    );
    for name in ["Expires", "Signature", "Key-Pair-Id"] {
        assert!(param(&signed, name).is_some(), "{signed} lacks {name}");
    }
    assert_eq!(param(&signed, "Key-Pair-Id").as_deref(), Some(K1));
    assert_eq!(param(&signed, "v").as_deref(), Some("1"));
    assert_served(cdn.get(&target(&cdn, &signed)), SECRET_A, "canned URL").await;
    assert_eq!(origin.hits("/private/a.txt"), 1);
    assert_unsigned_at_origin(&origin, "/private/a.txt", "/private/a.txt?v=1");
}

#[tokio::test]
async fn a_custom_policy_url_with_a_wildcard_resource_is_served_for_every_matching_path() {
    let (origin, cdn) = setup("").await;
    let json = policy(&url(&cdn, "/private/*"), now() + 3600, "");
    for (path, body) in [("/private/a.txt", SECRET_A), ("/private/b.txt", SECRET_B)] {
        let signed = custom(&url(&cdn, path), K1, &keys().k1, &json);
        assert!(param(&signed, "Policy").is_some(), "{signed} lacks Policy");
        assert!(param(&signed, "Expires").is_none(), "{signed} has Expires");
        assert_served(cdn.get(&target(&cdn, &signed)), body, path).await;
        assert_unsigned_at_origin(&origin, path, path);
    }
    assert_eq!(origin.total(), 2);
}

#[tokio::test]
async fn canned_signed_cookies_are_accepted_and_not_forwarded() {
    let (origin, cdn) = setup("").await;
    let cookie = cookies(
        &url(&cdn, "/private/a.txt"),
        K1,
        &keys().k1,
        &SignPolicy::Canned {
            expires: now() + 3600,
        },
    );
    for name in [
        "CloudFront-Expires=",
        "CloudFront-Signature=",
        "CloudFront-Key-Pair-Id=",
    ] {
        assert!(cookie.contains(name), "{cookie} lacks {name}");
    }
    assert!(!cookie.contains("CloudFront-Policy="), "{cookie}");
    assert_served(
        cdn.get("/private/a.txt").header("cookie", &cookie),
        SECRET_A,
        "canned cookies",
    )
    .await;
    assert_unsigned_at_origin(&origin, "/private/a.txt", "/private/a.txt");
}

#[tokio::test]
async fn custom_policy_signed_cookies_are_accepted_for_every_path_they_cover() {
    let (origin, cdn) = setup("").await;
    let json = policy(&url(&cdn, "/private/*"), now() + 3600, "");
    let cookie = cookies(
        &url(&cdn, "/private/*"),
        K2,
        &keys().k2,
        &SignPolicy::Custom { json },
    );
    for name in [
        "CloudFront-Policy=",
        "CloudFront-Signature=",
        "CloudFront-Key-Pair-Id=",
    ] {
        assert!(cookie.contains(name), "{cookie} lacks {name}");
    }
    // other cookies beside them are fine
    let cookie = format!("theme=dark; {cookie}; lang=de");
    for (path, body) in [("/private/a.txt", SECRET_A), ("/private/b.txt", SECRET_B)] {
        assert_served(cdn.get(path).header("cookie", &cookie), body, path).await;
        assert_unsigned_at_origin(&origin, path, path);
    }
}

#[tokio::test]
async fn a_signed_url_is_also_accepted_over_http2() {
    let (origin, cdn) = setup("").await;
    let signed = canned(&url(&cdn, "/private/a.txt"), K1, &keys().k1, now() + 3600);
    assert_served(cdn.get(&target(&cdn, &signed)).h2(), SECRET_A, "HTTP/2").await;
    assert_unsigned_at_origin(&origin, "/private/a.txt", "/private/a.txt");
}

#[tokio::test]
async fn public_paths_beside_a_signed_behavior_need_no_signature() {
    let (origin, cdn) = setup("").await;
    assert_served(cdn.get("/public.txt"), "public", "public path").await;
    assert_eq!(origin.hits("/public.txt"), 1);
}

// ------------------------------------------------------------------ refused

#[tokio::test]
async fn a_request_without_any_signature_is_refused() {
    let (origin, cdn) = setup("").await;
    assert_refused(&origin, cdn.get("/private/a.txt"), "no signature").await;
    assert_refused(
        &origin,
        cdn.get("/private/a.txt?v=1"),
        "no signature, a query",
    )
    .await;
    // only some of the parameters
    let signed = canned(&url(&cdn, "/private/a.txt"), K1, &keys().k1, now() + 3600);
    let expires = param(&signed, "Expires").unwrap();
    let signature = param(&signed, "Signature").unwrap();
    assert_refused(
        &origin,
        cdn.get(&format!(
            "/private/a.txt?Expires={expires}&Signature={signature}"
        )),
        "no Key-Pair-Id",
    )
    .await;
    assert_refused(
        &origin,
        cdn.get(&format!(
            "/private/a.txt?Expires={expires}&Key-Pair-Id={K1}"
        )),
        "no Signature",
    )
    .await;
    assert_refused(
        &origin,
        cdn.get(&format!(
            "/private/a.txt?Signature={signature}&Key-Pair-Id={K1}"
        )),
        "neither Expires nor Policy",
    )
    .await;
}

#[tokio::test]
async fn a_url_with_signing_parameters_is_judged_alone_even_when_valid_cookies_come_with_it() {
    let (origin, cdn) = setup("").await;
    let good_cookies = cookies(
        &url(&cdn, "/private/a.txt"),
        K1,
        &keys().k1,
        &SignPolicy::Canned {
            expires: now() + 3600,
        },
    );
    // the cookies alone are fine
    assert_served(
        cdn.get("/private/a.txt").header("cookie", &good_cookies),
        SECRET_A,
        "cookies alone",
    )
    .await;
    let bad = with_param(
        &canned(&url(&cdn, "/private/b.txt"), K1, &keys().k1, now() + 3600),
        "Signature",
        flip,
    );
    let good_cookies_b = cookies(
        &url(&cdn, "/private/b.txt"),
        K1,
        &keys().k1,
        &SignPolicy::Canned {
            expires: now() + 3600,
        },
    );
    assert_refused(
        &origin,
        cdn.get(&target(&cdn, &bad))
            .header("cookie", &good_cookies_b),
        "bad URL signature with valid cookies",
    )
    .await;
}

#[tokio::test]
async fn a_signature_that_is_not_base64_is_refused() {
    let (origin, cdn) = setup("").await;
    let signed = canned(&url(&cdn, "/private/a.txt"), K1, &keys().k1, now() + 3600);
    for junk in ["!!!not-base64!!!", "", "%00%01", "AAAA"] {
        let bad = with_param(&signed, "Signature", |_| junk.to_string());
        assert_refused(
            &origin,
            cdn.get(&target(&cdn, &bad)),
            &format!("Signature={junk}"),
        )
        .await;
    }
    let bad_policy = with_param(
        &custom(
            &url(&cdn, "/private/a.txt"),
            K1,
            &keys().k1,
            &policy(&url(&cdn, "/private/*"), now() + 3600, ""),
        ),
        "Policy",
        |_| "bm90IGpzb24_".to_string(), // base64 of "not json"
    );
    assert_refused(
        &origin,
        cdn.get(&target(&cdn, &bad_policy)),
        "malformed Policy",
    )
    .await;
}

#[tokio::test]
async fn a_tampered_signature_is_refused() {
    let (origin, cdn) = setup("").await;
    let signed = canned(&url(&cdn, "/private/a.txt"), K1, &keys().k1, now() + 3600);
    let bad = with_param(&signed, "Signature", flip);
    assert_refused(
        &origin,
        cdn.get(&target(&cdn, &bad)),
        "one signature character changed",
    )
    .await;
    // the untouched URL still works
    assert_served(cdn.get(&target(&cdn, &signed)), SECRET_A, "untouched").await;
}

#[tokio::test]
async fn a_tampered_expires_is_refused() {
    let (origin, cdn) = setup("").await;
    let expires = now() + 3600;
    let signed = canned(&url(&cdn, "/private/a.txt"), K1, &keys().k1, expires);
    for changed in [expires + 1, expires + 86_400, expires - 1] {
        let bad = with_param(&signed, "Expires", |_| changed.to_string());
        assert_refused(
            &origin,
            cdn.get(&target(&cdn, &bad)),
            &format!("Expires={changed}"),
        )
        .await;
    }
}

#[tokio::test]
async fn an_expired_url_or_cookie_is_refused() {
    let (origin, cdn) = setup("").await;
    let past = now() - 60;
    let signed = canned(&url(&cdn, "/private/a.txt"), K1, &keys().k1, past);
    assert_refused(&origin, cdn.get(&target(&cdn, &signed)), "canned, expired").await;
    let json = policy(&url(&cdn, "/private/*"), past, "");
    let signed = custom(&url(&cdn, "/private/a.txt"), K1, &keys().k1, &json);
    assert_refused(&origin, cdn.get(&target(&cdn, &signed)), "custom, expired").await;
    let cookie = cookies(
        &url(&cdn, "/private/a.txt"),
        K1,
        &keys().k1,
        &SignPolicy::Canned { expires: past },
    );
    assert_refused(
        &origin,
        cdn.get("/private/a.txt").header("cookie", &cookie),
        "cookies, expired",
    )
    .await;
}

#[tokio::test]
async fn a_policy_not_yet_valid_is_refused() {
    let (origin, cdn) = setup("").await;
    let json = policy(
        &url(&cdn, "/private/*"),
        now() + 7200,
        &format!(r#""DateGreaterThan":{{"AWS:EpochTime":{}}}"#, now() + 3600),
    );
    let signed = custom(&url(&cdn, "/private/a.txt"), K1, &keys().k1, &json);
    assert_refused(
        &origin,
        cdn.get(&target(&cdn, &signed)),
        "DateGreaterThan in the future",
    )
    .await;
    // the same policy with the start in the past is fine
    let json = policy(
        &url(&cdn, "/private/*"),
        now() + 7200,
        &format!(r#""DateGreaterThan":{{"AWS:EpochTime":{}}}"#, now() - 60),
    );
    let signed = custom(&url(&cdn, "/private/a.txt"), K1, &keys().k1, &json);
    assert_served(
        cdn.get(&target(&cdn, &signed)),
        SECRET_A,
        "DateGreaterThan in the past",
    )
    .await;
}

/// A custom policy for `/private/*` limited to the source network `cidr`.
fn ip_policy(cdn: &Cdn, cidr: &str) -> String {
    policy(
        &url(cdn, "/private/*"),
        now() + 3600,
        &format!(r#""IpAddress":{{"AWS:SourceIp":"{cidr}"}}"#),
    )
}

#[tokio::test]
async fn a_policy_for_another_source_network_is_refused() {
    let (origin, cdn) = setup("").await;
    let signed = custom(
        &url(&cdn, "/private/a.txt"),
        K1,
        &keys().k1,
        &ip_policy(&cdn, "10.0.0.0/8"),
    );
    assert_refused(
        &origin,
        cdn.get(&target(&cdn, &signed)),
        "IpAddress 10.0.0.0/8 from 127.0.0.1",
    )
    .await;
    // the viewer's own network is fine
    let signed = custom(
        &url(&cdn, "/private/a.txt"),
        K1,
        &keys().k1,
        &ip_policy(&cdn, "127.0.0.1/32"),
    );
    assert_served(
        cdn.get(&target(&cdn, &signed)),
        SECRET_A,
        "IpAddress 127.0.0.1/32",
    )
    .await;
}

#[tokio::test]
async fn the_source_network_comes_from_x_forwarded_for_when_the_peer_is_a_trusted_proxy() {
    let (origin, cdn) = setup(r#"trusted_proxies = ["127.0.0.1/32"]"#).await;
    let signed = custom(
        &url(&cdn, "/private/a.txt"),
        K1,
        &keys().k1,
        &ip_policy(&cdn, "10.0.0.0/8"),
    );
    assert_served(
        cdn.get(&target(&cdn, &signed))
            .header("x-forwarded-for", "10.1.2.3"),
        SECRET_A,
        "trusted proxy forwarding 10.1.2.3",
    )
    .await;
    assert_eq!(origin.hits("/private/a.txt"), 1);
    // through the trusted proxy, a viewer outside the network is still refused
    let signed_b = custom(
        &url(&cdn, "/private/b.txt"),
        K1,
        &keys().k1,
        &ip_policy(&cdn, "10.0.0.0/8"),
    );
    assert_refused(
        &origin,
        cdn.get(&target(&cdn, &signed_b))
            .header("x-forwarded-for", "198.51.100.7"),
        "trusted proxy forwarding 198.51.100.7",
    )
    .await;
    // the client's own claim left of an untrusted hop is not believed
    assert_refused(
        &origin,
        cdn.get(&target(&cdn, &signed_b))
            .header("x-forwarded-for", "10.1.2.3, 198.51.100.7"),
        "10.1.2.3 written by the client before the untrusted hop",
    )
    .await;
}

#[tokio::test]
async fn a_spoofed_x_forwarded_for_from_an_untrusted_peer_does_not_satisfy_an_ip_policy() {
    let (origin, cdn) = setup("").await;
    let signed = custom(
        &url(&cdn, "/private/a.txt"),
        K1,
        &keys().k1,
        &ip_policy(&cdn, "10.0.0.0/8"),
    );
    assert_refused(
        &origin,
        cdn.get(&target(&cdn, &signed))
            .header("x-forwarded-for", "10.1.2.3"),
        "XFF 10.1.2.3 from an untrusted peer",
    )
    .await;
}

#[tokio::test]
async fn a_signature_for_another_resource_is_refused() {
    let (origin, cdn) = setup("").await;
    // canned: the parameters of a.txt's URL on b.txt
    let signed = canned(&url(&cdn, "/private/a.txt"), K1, &keys().k1, now() + 3600);
    let query = signed.split_once('?').unwrap().1;
    assert_refused(
        &origin,
        cdn.get(&format!("/private/b.txt?{query}")),
        "a.txt's signature on b.txt",
    )
    .await;
    // canned: another query string is another resource
    let signed = canned(
        &url(&cdn, "/private/a.txt?v=1"),
        K1,
        &keys().k1,
        now() + 3600,
    );
    let moved = target(&cdn, &signed).replace("v=1", "v=2");
    assert_refused(&origin, cdn.get(&moved), "v=1 signed, v=2 asked").await;
    // canned: another host
    let signed = canned(
        &format!("https://other.test:{}/private/a.txt", cdn.https_port()),
        K1,
        &keys().k1,
        now() + 3600,
    );
    let query = signed.split_once('?').unwrap().1;
    assert_refused(
        &origin,
        cdn.get(&format!("/private/a.txt?{query}")),
        "signed for another host",
    )
    .await;
    // custom: a wildcard that does not cover the path
    let json = policy(&url(&cdn, "/private/a*"), now() + 3600, "");
    let signed = custom(&url(&cdn, "/private/b.txt"), K1, &keys().k1, &json);
    assert_refused(
        &origin,
        cdn.get(&target(&cdn, &signed)),
        "/private/a* on b.txt",
    )
    .await;
    // cookies for a.txt on b.txt
    let cookie = cookies(
        &url(&cdn, "/private/a.txt"),
        K1,
        &keys().k1,
        &SignPolicy::Canned {
            expires: now() + 3600,
        },
    );
    assert_refused(
        &origin,
        cdn.get("/private/b.txt").header("cookie", &cookie),
        "a.txt's cookies on b.txt",
    )
    .await;
}

#[tokio::test]
async fn a_key_id_outside_the_trusted_groups_is_refused() {
    let (origin, cdn) = setup("").await;
    // a key the CDN does not know
    let signed = canned(
        &url(&cdn, "/private/a.txt"),
        K3,
        &keys().stranger,
        now() + 3600,
    );
    assert_refused(&origin, cdn.get(&target(&cdn, &signed)), "unknown key id").await;
    // a stranger's signature under a known id
    let signed = canned(
        &url(&cdn, "/private/a.txt"),
        K1,
        &keys().stranger,
        now() + 3600,
    );
    assert_refused(
        &origin,
        cdn.get(&target(&cdn, &signed)),
        "K1's id, another key",
    )
    .await;
    // K1's signature claiming to be K2's
    let signed = canned(&url(&cdn, "/private/a.txt"), K1, &keys().k1, now() + 3600);
    let relabelled = with_param(&signed, "Key-Pair-Id", |_| K2.to_string());
    assert_refused(
        &origin,
        cdn.get(&target(&cdn, &relabelled)),
        "K1's signature labelled K2",
    )
    .await;
}

// ------------------------------------------------------------------ keys and the cache

#[tokio::test]
async fn both_keys_of_a_rotated_group_sign_valid_urls() {
    let (origin, cdn) = setup("").await;
    let by_k1 = canned(&url(&cdn, "/private/a.txt"), K1, &keys().k1, now() + 3600);
    let by_k2 = canned(&url(&cdn, "/private/b.txt"), K2, &keys().k2, now() + 3600);
    assert_served(cdn.get(&target(&cdn, &by_k1)), SECRET_A, "signed by K1").await;
    assert_served(cdn.get(&target(&cdn, &by_k2)), SECRET_B, "signed by K2").await;
    assert_eq!(origin.total(), 2);
}

#[tokio::test]
async fn a_refusal_is_never_cached_as_the_object_and_the_cached_object_never_skips_the_check() {
    let (origin, cdn) = setup("").await;
    assert_refused(&origin, cdn.get("/private/a.txt"), "unsigned, first").await;
    let signed = canned(&url(&cdn, "/private/a.txt"), K1, &keys().k1, now() + 3600);
    let first = assert_served(
        cdn.get(&target(&cdn, &signed)),
        SECRET_A,
        "signed after a refusal",
    )
    .await;
    assert_eq!(first.x_cache(), MISS);
    let second = assert_served(cdn.get(&target(&cdn, &signed)), SECRET_A, "signed again").await;
    assert_eq!(second.x_cache(), HIT);
    assert_eq!(origin.hits("/private/a.txt"), 1);
    // the object is cached now, and still an unsigned or badly signed request gets 403
    assert_refused(
        &origin,
        cdn.get("/private/a.txt"),
        "unsigned, object cached",
    )
    .await;
    let bad = with_param(&signed, "Signature", flip);
    let refused = cdn.get(&target(&cdn, &bad)).send().await;
    assert_eq!(refused.status, 403);
    assert_ne!(
        refused.text(),
        SECRET_A,
        "the cached object leaked in a 403"
    );
    assert_eq!(origin.hits("/private/a.txt"), 1);
}

#[tokio::test]
async fn the_same_object_signed_twice_is_one_cache_entry() {
    let (origin, cdn) = setup("").await;
    let a = canned(
        &url(&cdn, "/private/a.txt?v=1"),
        K1,
        &keys().k1,
        now() + 3600,
    );
    let b = canned(
        &url(&cdn, "/private/a.txt?v=1"),
        K2,
        &keys().k2,
        now() + 7200,
    );
    assert_ne!(param(&a, "Signature"), param(&b, "Signature"));
    let first = assert_served(cdn.get(&target(&cdn, &a)), SECRET_A, "first signature").await;
    let second = assert_served(cdn.get(&target(&cdn, &b)), SECRET_A, "second signature").await;
    assert_eq!(first.x_cache(), MISS);
    assert_eq!(
        second.x_cache(),
        HIT,
        "another signature must not split the cache"
    );
    // and cookies for it hit the same entry
    let cookie = cookies(
        &url(&cdn, "/private/a.txt?v=1"),
        K1,
        &keys().k1,
        &SignPolicy::Canned {
            expires: now() + 3600,
        },
    );
    let third = assert_served(
        cdn.get("/private/a.txt?v=1").header("cookie", &cookie),
        SECRET_A,
        "cookies",
    )
    .await;
    assert_eq!(
        third.x_cache(),
        HIT,
        "signed cookies must not split the cache"
    );
    assert_eq!(origin.hits("/private/a.txt"), 1);
}

// ------------------------------------------------------------------ hand-made signatures

/// `openssl dgst -<digest> -sign` over `message`, in CloudFront's URL-safe base64
/// (`+` → `-`, `=` → `_`, `/` → `~`).
fn openssl_sign(pair: &KeyPair, digest: &str, message: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let input = dir.path().join("message");
    std::fs::write(&key, &pair.private_pem).unwrap();
    std::fs::write(&input, message).unwrap();
    let signature = pipe(
        "openssl",
        &[
            "dgst",
            &format!("-{digest}"),
            "-sign",
            key.to_str().unwrap(),
            input.to_str().unwrap(),
        ],
        b"",
    );
    let b64 = pipe("openssl", &["base64", "-A"], &signature);
    String::from_utf8(b64)
        .unwrap()
        .trim()
        .replace('+', "-")
        .replace('=', "_")
        .replace('/', "~")
}

/// The canned policy CloudFront signs for `url` (no spaces, this member order).
fn canned_policy(url: &str, expires: u64) -> String {
    format!(
        r#"{{"Statement":[{{"Resource":"{url}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}"#
    )
}

#[tokio::test]
async fn a_sha1_signature_made_with_openssl_is_accepted() {
    let (origin, cdn) = setup("").await;
    let resource = url(&cdn, "/private/a.txt");
    let expires = now() + 3600;
    let signature = openssl_sign(&keys().k1, "sha1", &canned_policy(&resource, expires));
    assert_served(
        cdn.get(&format!(
            "/private/a.txt?Expires={expires}&Signature={signature}&Key-Pair-Id={K1}"
        )),
        SECRET_A,
        "openssl SHA-1",
    )
    .await;
    assert_unsigned_at_origin(&origin, "/private/a.txt", "/private/a.txt");
}

#[tokio::test]
async fn hash_algorithm_sha256_signatures_are_accepted_and_the_algorithm_is_not_interchangeable() {
    let (origin, cdn) = setup("").await;
    let resource = url(&cdn, "/private/a.txt");
    let expires = now() + 3600;
    let message = canned_policy(&resource, expires);
    let sha256 = openssl_sign(&keys().k1, "sha256", &message);
    let sha1 = openssl_sign(&keys().k1, "sha1", &message);
    let q = |signature: &str, algorithm: Option<&str>| {
        let mut q =
            format!("/private/a.txt?Expires={expires}&Signature={signature}&Key-Pair-Id={K1}");
        if let Some(algorithm) = algorithm {
            q.push_str(&format!("&Hash-Algorithm={algorithm}"));
        }
        q
    };
    assert_refused(
        &origin,
        cdn.get(&q(&sha256, None)),
        "SHA-256 signature read as SHA-1",
    )
    .await;
    assert_refused(
        &origin,
        cdn.get(&q(&sha1, Some("SHA256"))),
        "SHA-1 signature labelled SHA256",
    )
    .await;
    assert_served(
        cdn.get(&q(&sha256, Some("SHA256"))),
        SECRET_A,
        "Hash-Algorithm=SHA256",
    )
    .await;
    assert_unsigned_at_origin(&origin, "/private/a.txt", "/private/a.txt");
}

#[tokio::test]
async fn sign_url_with_sha256_adds_hash_algorithm_and_is_accepted() {
    let (origin, cdn) = setup("").await;
    let key = signed::parse_private_key_pem(&keys().k2.private_pem)
        .unwrap_or_else(|e| panic!("parse_private_key_pem: {e:?}"));
    let signed = signed::sign_url_with(
        &url(&cdn, "/private/a.txt"),
        K2,
        &key,
        &SignPolicy::Canned {
            expires: now() + 3600,
        },
        signed::HashAlgorithm::Sha256,
    )
    .unwrap_or_else(|e| panic!("sign_url_with: {e:?}"));
    assert_eq!(
        param(&signed, "Hash-Algorithm").as_deref(),
        Some("SHA256"),
        "{signed}"
    );
    let downgraded = with_param(&signed, "Hash-Algorithm", |_| "SHA1".to_string());
    assert_refused(
        &origin,
        cdn.get(&target(&cdn, &downgraded)),
        "SHA-256 signature labelled SHA1",
    )
    .await;
    assert_served(
        cdn.get(&target(&cdn, &signed)),
        SECRET_A,
        "sign_url_with SHA256",
    )
    .await;
    assert_unsigned_at_origin(&origin, "/private/a.txt", "/private/a.txt");
}

// ------------------------------------------------------------------ botocore

/// Fails (not skips) when the Python packages are missing: CI installs them.
fn require_botocore() {
    let check = Command::new("python3")
        .args(["-c", "import botocore, cryptography"])
        .output();
    match check {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the botocore compatibility tests need Python's botocore and cryptography: \
             pip install botocore cryptography\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "the botocore compatibility tests need python3 with botocore and cryptography \
             (pip install botocore cryptography): {e}"
        ),
    }
}

/// `tests/it/signers/botocore_sign.py <private.pem> <key-id> <url> <expires> [policy]`.
fn botocore_sign(
    private: &Path,
    key_id: &str,
    url: &str,
    expires: u64,
    policy: Option<&str>,
) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/signers/botocore_sign.py");
    let mut command = Command::new("python3");
    command
        .arg(&script)
        .arg(private)
        .arg(key_id)
        .arg(url)
        .arg(expires.to_string());
    if let Some(policy) = policy {
        command.arg(policy);
    }
    let out = command.output().expect("run python3");
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn private_key_file(cdn: &Cdn, name: &str) -> PathBuf {
    cdn.dir
        .path()
        .join("keys")
        .join(format!("{name}-private.pem"))
}

#[tokio::test]
async fn urls_signed_by_botocore_are_accepted_and_every_tampering_is_refused() {
    require_botocore();
    let (origin, cdn) = setup("").await;
    let k1 = private_key_file(&cdn, "k1");
    let expires = now() + 3600;
    let canned_url = botocore_sign(&k1, K1, &url(&cdn, "/private/a.txt?v=1"), expires, None);
    let json = policy(&url(&cdn, "/private/b*"), expires, "");
    let custom_url = botocore_sign(&k1, K1, &url(&cdn, "/private/b.txt"), 0, Some(&json));
    assert!(param(&custom_url, "Policy").is_some(), "{custom_url}");

    for (signed, path, body) in [
        (&canned_url, "/private/a.txt", SECRET_A),
        (&custom_url, "/private/b.txt", SECRET_B),
    ] {
        let mut tampered = vec![
            (
                "signature byte flipped",
                with_param(signed, "Signature", flip),
            ),
            (
                "Key-Pair-Id changed",
                with_param(signed, "Key-Pair-Id", |_| K2.to_string()),
            ),
            ("path changed", signed.replace(path, "/private/c.txt")),
        ];
        if param(signed, "Expires").is_some() {
            tampered.push((
                "Expires changed",
                with_param(signed, "Expires", |e| {
                    (e.parse::<u64>().unwrap() + 60).to_string()
                }),
            ));
        } else {
            tampered.push(("Policy changed", with_param(signed, "Policy", flip)));
        }
        for (what, bad) in &tampered {
            assert_refused(
                &origin,
                cdn.get(&target(&cdn, bad)),
                &format!("botocore URL, {what}"),
            )
            .await;
        }
        assert_served(
            cdn.get(&target(&cdn, signed)),
            body,
            &format!("botocore URL {signed}"),
        )
        .await;
    }
    assert_unsigned_at_origin(&origin, "/private/a.txt", "/private/a.txt?v=1");
    assert_unsigned_at_origin(&origin, "/private/b.txt", "/private/b.txt");
    assert_eq!(origin.total(), 2);
}

#[tokio::test]
async fn botocore_and_sign_url_agree_on_canned_signatures() {
    require_botocore();
    let (_origin, cdn) = setup("").await;
    let expires = now() + 3600;
    let resource = url(&cdn, "/private/a.txt?v=1");
    let ours = canned(&resource, K1, &keys().k1, expires);
    let theirs = botocore_sign(&private_key_file(&cdn, "k1"), K1, &resource, expires, None);
    // PKCS#1 v1.5 is deterministic: the same key and policy give the same URL
    assert_eq!(ours, theirs);
}

// ------------------------------------------------------------------ the binary

fn run_bin(cdn: &Cdn, args: &[&str]) -> String {
    let config = cdn.dir.path().join("edgewise.toml");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(args)
        .output()
        .expect("run edgewise-cdn");
    assert!(
        out.status.success(),
        "edgewise-cdn {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn sign_url_help_says_that_expires_or_policy_is_required() {
    let help = Command::new(BIN)
        .args(["sign-url", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("<--expires <EXPIRES>|--policy <POLICY>>"),
        "{text}"
    );
    let neither = Command::new(BIN)
        .args([
            "sign-url",
            "--key-pair-id",
            "K",
            "--private-key",
            "k.pem",
            "--url",
            "https://h/",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&neither.stderr);
    assert_eq!(neither.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("required arguments were not provided"),
        "{stderr}"
    );
}

#[tokio::test]
async fn edgewise_cdn_sign_url_output_is_accepted() {
    let (origin, cdn) = setup("").await;
    let key = private_key_file(&cdn, "k2");
    let resource = url(&cdn, "/private/a.txt?v=1");
    let printed = run_bin(
        &cdn,
        &[
            "sign-url",
            "--key-pair-id",
            K2,
            "--private-key",
            key.to_str().unwrap(),
            "--url",
            &resource,
            "--expires",
            "1h",
        ],
    );
    let signed = printed.trim();
    assert_eq!(printed.lines().count(), 1, "one URL: {printed:?}");
    let expires: u64 = param(signed, "Expires")
        .unwrap_or_else(|| panic!("{signed} lacks Expires"))
        .parse()
        .unwrap();
    let ahead = expires.saturating_sub(now());
    assert!(
        (3500..=3700).contains(&ahead),
        "--expires 1h gave Expires {ahead} s ahead"
    );
    assert_served(cdn.get(&target(&cdn, signed)), SECRET_A, "sign-url output").await;
    assert_unsigned_at_origin(&origin, "/private/a.txt", "/private/a.txt?v=1");
    assert_refused(
        &origin,
        cdn.get(&target(&cdn, &with_param(signed, "Signature", flip))),
        "sign-url output, tampered",
    )
    .await;
}

#[tokio::test]
async fn edgewise_cdn_sign_cookies_output_is_accepted() {
    let (origin, cdn) = setup("").await;
    let key = private_key_file(&cdn, "k1");
    let resource = url(&cdn, "/private/*");
    let policy_file = cdn.dir.path().join("policy.json");
    std::fs::write(&policy_file, policy(&resource, now() + 3600, "")).unwrap();
    let printed = run_bin(
        &cdn,
        &[
            "sign-cookies",
            "--key-pair-id",
            K1,
            "--private-key",
            key.to_str().unwrap(),
            "--url",
            &resource,
            "--policy",
            policy_file.to_str().unwrap(),
        ],
    );
    let lines: Vec<&str> = printed.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 3, "three cookies: {printed:?}");
    let cookie = lines.join("; ");
    for name in [
        "CloudFront-Policy=",
        "CloudFront-Signature=",
        "CloudFront-Key-Pair-Id=",
    ] {
        assert!(cookie.contains(name), "{cookie} lacks {name}");
    }
    for (path, body) in [("/private/a.txt", SECRET_A), ("/private/b.txt", SECRET_B)] {
        assert_served(cdn.get(path).header("cookie", &cookie), body, path).await;
    }
    // canned cookies with --expires
    let resource = url(&cdn, "/private/a.txt");
    let printed = run_bin(
        &cdn,
        &[
            "sign-cookies",
            "--key-pair-id",
            K1,
            "--private-key",
            key.to_str().unwrap(),
            "--url",
            &resource,
            "--expires",
            "10m",
        ],
    );
    let cookie = printed
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    assert!(cookie.contains("CloudFront-Expires="), "{cookie}");
    assert_served(
        cdn.get("/private/a.txt").header("cookie", &cookie),
        SECRET_A,
        "canned cookies from the binary",
    )
    .await;
    assert_refused(
        &origin,
        cdn.get("/private/b.txt").header("cookie", &cookie),
        "a.txt's canned cookies on b.txt",
    )
    .await;
    // Canned cookies over a wildcard could never verify: refused, pointing at --policy.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(cdn.dir.path().join("edgewise.toml"))
        .args(["sign-cookies", "--key-pair-id", K1, "--private-key"])
        .arg(&key)
        .args(["--url", &url(&cdn, "/private/*"), "--expires", "10m"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty(), "{stderr}");
    assert!(stderr.contains("custom policy (--policy)"), "{stderr}");
}
