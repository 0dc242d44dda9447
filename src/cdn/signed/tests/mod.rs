//! Tests for signed URLs and cookies. The keys under testdata/ are throwaway test keys made with
//! OpenSSL; the expected signatures were made with `openssl sha1 -sign` (and `dgst -sha256`).

use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use http::HeaderMap;
use http::header::{COOKIE, HeaderValue};
use rsa::RsaPrivateKey;

use super::*;

mod denials;
mod flows;
mod parsing;

const KEY1_PRIVATE: &str = include_str!("../testdata/key1_pkcs1.pem");
const KEY2_PRIVATE: &str = include_str!("../testdata/key2_pkcs8.pem");
const KEY1_PUBLIC: &str = include_str!("../testdata/key1_spki.pub.pem");
const KEY2_PUBLIC: &str = include_str!("../testdata/key2_pkcs1.pub.pem");

static KEY1: LazyLock<RsaPrivateKey> =
    LazyLock::new(|| parse_private_key_pem(KEY1_PRIVATE).unwrap());
static KEY2: LazyLock<RsaPrivateKey> =
    LazyLock::new(|| parse_private_key_pem(KEY2_PRIVATE).unwrap());

/// Trusts K1 (SPKI PEM) and K2 (PKCS#1 PEM) in one group.
static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| {
    Verifier::new(vec![
        KeyGroup::from_pems("group-a", [("K1", KEY1_PUBLIC), ("K2", KEY2_PUBLIC)]).unwrap(),
    ])
});

const T: u64 = 1_767_225_600;
const URL: &str = "https://d111111abcdef8.cloudfront.net/images/photo.jpg?size=large";

fn check_with(
    v: &Verifier,
    url: &str,
    headers: &HeaderMap,
    viewer: &str,
    now: u64,
) -> Result<(), Denial> {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (host_path, query) = match rest.split_once('?') {
        Some((hp, q)) => (hp, Some(q)),
        None => (rest, None),
    };
    let (host, path) = host_path.split_at(host_path.find('/').unwrap());
    v.check(&SignedRequest {
        scheme,
        host,
        path,
        query,
        headers,
        viewer: viewer.parse().unwrap(),
        now: UNIX_EPOCH + Duration::from_secs(now),
    })
}

fn check(url: &str, viewer: &str, now: u64) -> Result<(), Denial> {
    check_with(&VERIFIER, url, &HeaderMap::new(), viewer, now)
}

fn check_cookies(url: &str, cookies: &[&str], now: u64) -> Result<(), Denial> {
    let mut headers = HeaderMap::new();
    for c in cookies {
        headers.append(COOKIE, HeaderValue::from_str(c).unwrap());
    }
    check_with(&VERIFIER, url, &headers, "192.0.2.10", now)
}

fn cookie_header(cookies: &[(&str, String)]) -> String {
    cookies
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn custom(resource: Option<&str>, start: Option<u64>, ip: Option<&str>) -> SignPolicy {
    let policy = Policy {
        resource: resource.map(str::to_string),
        date_less_than: T,
        date_greater_than: start,
        source_ip: ip.map(|ip| policy::parse_cidr(ip).unwrap()),
    };
    SignPolicy::Custom {
        json: policy.to_json(),
    }
}

/// Replaces the value of `name` in a signed URL.
fn replace_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').unwrap();
    let query: Vec<String> = query
        .split('&')
        .map(|s| {
            if s.split('=').next() == Some(name) {
                format!("{name}={value}")
            } else {
                s.to_string()
            }
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

fn param<'a>(url: &'a str, name: &str) -> &'a str {
    let query = url.split_once('?').unwrap().1;
    query
        .split('&')
        .find_map(|s| s.strip_prefix(&format!("{name}=")))
        .unwrap()
}
