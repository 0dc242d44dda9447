//! `[cdn.acme]` and the `[[cdn.certs]]` entries with `acme = true`: where certificates come
//! from (an RFC 8555 CA), how names are proved (tls-alpn-01, http-01 or dns-01) and when
//! they are renewed.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use toml::Spanned;

use super::cdn::Distribution;
use super::diag::{ConfigError, SourceMap};
use super::dns::TsigKeyConfig;
use super::dns::tsig::one_key;
use super::raw::{RawAcme, RawAcmeDns, RawCdn, RawCertNames, RawTsigKey};

/// Let's Encrypt renews 30 days before its 90-day certificates expire; so do we.
const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// Validated `[cdn.acme]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AcmeConfig {
    /// The CA's directory URL (RFC 8555 §7.1.1), `https://` only.
    pub directory: String,
    /// The account's contact, as `mailto:` it is sent with.
    pub email: Option<String>,
    /// PEM roots trusted for the CA's HTTPS endpoint instead of the public ones (a private
    /// CA, Pebble).
    pub ca_roots: Option<PathBuf>,
    pub challenge: Challenge,
    /// A certificate is renewed once it has less than this left.
    pub renew_before: Duration,
    pub eab: Option<Eab>,
    /// Where dns-01 records are published; set exactly when `challenge` is dns-01.
    pub dns: Option<Dns01>,
}

/// How the CA is shown that we control a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// RFC 8737: a certificate presented on the HTTPS port to ALPN `acme-tls/1`.
    TlsAlpn01,
    /// RFC 8555 §8.3: a token under `/.well-known/acme-challenge/` on the HTTP port.
    Http01,
    /// RFC 8555 §8.4: a TXT record, published by an RFC 2136 update; the only one for
    /// wildcards.
    Dns01,
}

impl Challenge {
    pub fn as_str(self) -> &'static str {
        match self {
            Challenge::TlsAlpn01 => "tls-alpn-01",
            Challenge::Http01 => "http-01",
            Challenge::Dns01 => "dns-01",
        }
    }
}

/// External Account Binding (RFC 8555 §7.3.4): a key id and MAC key the CA handed out.
#[derive(Clone, PartialEq)]
pub struct Eab {
    pub kid: String,
    pub hmac_key: Vec<u8>,
}

impl fmt::Debug for Eab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Eab({}, {} key bytes)", self.kid, self.hmac_key.len())
    }
}

/// The DNS server dns-01 TXT records are added to and removed from, and the TSIG key the
/// updates are signed with.
#[derive(Debug, Clone)]
pub struct Dns01 {
    pub server: SocketAddr,
    pub key: TsigKeyConfig,
}

impl PartialEq for Dns01 {
    fn eq(&self, other: &Dns01) -> bool {
        self.server == other.server
            && self.key.name == other.key.name
            && self.key.algorithm == other.key.algorithm
            && self.key.secret == other.key.secret
    }
}

/// A `[[cdn.certs]]` entry with `acme = true`: the names its certificate covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeCert {
    /// Lower-case DNS names, wildcards as `*.example.org`; sorted, no duplicates.
    pub names: Vec<String>,
}

/// `[cdn.acme]`, checked.
pub(super) fn validate(
    raw: &Spanned<RawAcme>,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<AcmeConfig> {
    let acme = raw.get_ref();
    let directory = acme.directory.get_ref().trim().to_string();
    let directory_ok = directory
        .strip_prefix("https://")
        .is_some_and(|rest| !rest.is_empty())
        && directory.parse::<http::Uri>().is_ok();
    if !directory_ok {
        errors.push(map.error(
            acme.directory.span(),
            "cdn.acme.directory",
            format!(
                "{directory:?} is not an https:// URL (e.g. \"https://acme-v02.api.letsencrypt.org/directory\")"
            ),
        ));
    }
    let email = acme.email.as_ref().and_then(|email| {
        let text = email.get_ref().trim();
        let valid = text
            .split_once('@')
            .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'));
        if !valid {
            errors.push(map.error(
                email.span(),
                "cdn.acme.email",
                format!("{text:?} is not an e-mail address"),
            ));
        }
        valid.then(|| text.to_string())
    });
    let ca_roots = acme.ca_roots.as_ref().map(|p| {
        let path = base.join(p.get_ref());
        if !path.is_file() {
            errors.push(map.error(
                p.span(),
                "cdn.acme.ca_roots",
                format!("{} is not a readable file", path.display()),
            ));
        }
        path
    });
    let challenge = match acme.challenge.as_ref().map(|c| (c, c.get_ref().as_str())) {
        None | Some((_, "tls-alpn-01")) => Some(Challenge::TlsAlpn01),
        Some((_, "http-01")) => Some(Challenge::Http01),
        Some((_, "dns-01")) => Some(Challenge::Dns01),
        Some((c, other)) => {
            errors.push(map.error(
                c.span(),
                "cdn.acme.challenge",
                format!("{other:?} is not a challenge: tls-alpn-01, http-01 or dns-01"),
            ));
            None
        }
    };
    let renew_before = acme
        .renew_before
        .as_ref()
        .map_or(DEFAULT_RENEW_BEFORE, |d| d.get_ref().0);
    if let Some(d) = acme
        .renew_before
        .as_ref()
        .filter(|d| d.get_ref().0.is_zero())
    {
        errors.push(map.error(d.span(), "cdn.acme.renew_before", "must be longer than 0s"));
    }
    let eab = acme.eab.as_ref().and_then(|eab| {
        let raw = eab.get_ref();
        match URL_SAFE_NO_PAD.decode(raw.hmac_key.get_ref().trim().trim_end_matches('=')) {
            Ok(key) if !key.is_empty() => Some(Eab {
                kid: raw.kid.get_ref().clone(),
                hmac_key: key,
            }),
            _ => {
                errors.push(map.error(
                    raw.hmac_key.span(),
                    "cdn.acme.eab.hmac_key",
                    "must be the base64url MAC key the CA gave with the key id",
                ));
                None
            }
        }
    });
    let dns = match (&acme.dns, challenge) {
        (Some(dns), _) => dns01(dns, map, base, errors),
        (None, Some(Challenge::Dns01)) => {
            errors.push(map.error(
                raw.span(),
                "cdn.acme.dns",
                "dns-01 needs the DNS server to update: dns = { server = \"127.0.0.1:5353\", tsig_key = \"acme-key\", secret = \"<base64>\" }",
            ));
            None
        }
        (None, _) => None,
    };
    Some(AcmeConfig {
        directory,
        email,
        ca_roots,
        challenge: challenge?,
        renew_before,
        eab,
        dns,
    })
    .filter(|_| directory_ok)
}

fn dns01(
    raw: &Spanned<RawAcmeDns>,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<Dns01> {
    let dns = raw.get_ref();
    let server = dns.server.get_ref().parse::<SocketAddr>().map_err(|_| {
        errors.push(map.error(
            dns.server.span(),
            "cdn.acme.dns.server",
            format!(
                "{:?} is not an address with a port (e.g. \"127.0.0.1:53\")",
                dns.server.get_ref()
            ),
        ))
    });
    // The same checks as a [[dns.tsig_keys]] entry: the key is the DNS server's.
    let as_tsig = Spanned::new(
        raw.span(),
        RawTsigKey {
            name: dns.tsig_key.clone(),
            algorithm: dns.algorithm.clone(),
            secret: dns.secret.clone(),
            secret_file: dns.secret_file.clone(),
        },
    );
    let key = one_key(&as_tsig, "cdn.acme.dns", map, base, errors);
    Some(Dns01 {
        server: server.ok()?,
        key: key?,
    })
}

/// The names of `[[cdn.certs]]` entry `key` with `acme = true`: its list, or with
/// `"distributions"` every distribution host that a public CA can issue for (a DNS name
/// with a dot: not `localhost`, not an address).
pub(super) fn cert_names(
    names: Option<&Spanned<RawCertNames>>,
    at: std::ops::Range<usize>,
    key: &str,
    acme: Option<&AcmeConfig>,
    distributions: &[Distribution],
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<AcmeCert> {
    let Some(names) = names else {
        errors.push(map.error(
            at,
            format!("{key}.names"),
            "an ACME certificate needs names = [\"www.example.org\", ...] or names = \"distributions\"",
        ));
        return None;
    };
    let mut list: Vec<String> = match names.get_ref() {
        RawCertNames::Word(word) if word == "distributions" => distributions
            .iter()
            .flat_map(|d| d.hosts.iter())
            .filter(|host| host.contains('.') && host.parse::<std::net::IpAddr>().is_err())
            .cloned()
            .collect(),
        RawCertNames::Word(word) => {
            errors.push(map.error(
                names.span(),
                format!("{key}.names"),
                format!("{word:?}: names is a list of names or the word \"distributions\""),
            ));
            return None;
        }
        RawCertNames::List(list) => {
            let mut valid = Vec::new();
            for name in list {
                match dns_name(name) {
                    Ok(checked) => valid.push(checked),
                    Err(why) => {
                        errors.push(map.error(names.span(), format!("{key}.names"), why));
                    }
                }
            }
            valid
        }
    };
    list.sort();
    list.dedup();
    if list.is_empty() {
        errors.push(map.error(
            names.span(),
            format!("{key}.names"),
            "no name to get a certificate for (distribution hosts must be DNS names with a dot)",
        ));
        return None;
    }
    if let Some(acme) = acme
        && acme.challenge != Challenge::Dns01
        && let Some(wildcard) = list.iter().find(|n| n.starts_with("*."))
    {
        errors.push(map.error(
            names.span(),
            format!("{key}.names"),
            format!(
                "{wildcard}: a wildcard can only be proved by dns-01 (cdn.acme.challenge is {})",
                acme.challenge.as_str()
            ),
        ));
        return None;
    }
    Some(AcmeCert { names: list })
}

/// `text` as a certificate name: lower-case, labels of letters, digits and hyphens, a dot
/// somewhere, and at most one leading `*.`.
fn dns_name(text: &str) -> Result<String, String> {
    let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let base = name.strip_prefix("*.").unwrap_or(&name);
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let address = base.parse::<std::net::IpAddr>().is_ok();
    if !address && base.contains('.') && base.len() <= 253 && base.split('.').all(label_ok) {
        Ok(name)
    } else {
        Err(format!(
            "{text:?} is not a DNS name a CA can certify (e.g. \"www.example.org\" or \"*.example.org\")"
        ))
    }
}

/// Checks that ACME entries have what they need: `[cdn.acme]` and `[cdn] data_dir`.
pub(super) fn check_requirements(
    raw: &RawCdn,
    acme_certs: usize,
    data_dir: Option<&Path>,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) {
    let Some(first) = raw
        .certs
        .iter()
        .find(|c| c.get_ref().acme.as_ref().is_some_and(|a| *a.get_ref()))
    else {
        return;
    };
    if raw.acme.is_none() {
        errors.push(map.error(
            first.span(),
            "cdn.acme",
            "ACME certificates need a CA: [cdn.acme] directory = \"https://...\"",
        ));
    }
    if acme_certs > 0 && data_dir.is_none() {
        errors.push(map.error(
            first.span(),
            "cdn.data_dir",
            "ACME certificates need a folder for the account and certificates: [cdn] data_dir = \"data/cdn\"",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CdnConfig, Config, Sections};

    /// Loads `[cdn]` with `extra` keys, `acme` as `[cdn.acme]` (when not empty) and `certs`
    /// as the `[[cdn.certs]]` tables; the errors as text.
    fn load(extra: &str, acme: &str, certs: &str) -> Result<CdnConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("roots.pem"), "").unwrap();
        let acme = if acme.is_empty() {
            String::new()
        } else {
            format!("[cdn.acme]\n{acme}\n")
        };
        let text = format!(
            r#"[cdn]
https_listen = ["127.0.0.1:0"]
{extra}
{acme}
{certs}
[[cdn.distributions]]
id = "site"
hosts = ["www.home.test", "localhost", "home.test"]
[[cdn.distributions.origins]]
id = "app"
url = "http://127.0.0.1:9"
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#
        );
        let path = dir.path().join("edgewise.toml");
        std::fs::write(&path, text).unwrap();
        Config::load_sections(&path, Sections::Cdn)
            .map(|c| c.cdn.unwrap())
            .map_err(|e| e.to_string())
    }

    const CA: &str = r#"directory = "https://127.0.0.1:14000/dir""#;
    const ACME_CERT: &str = "[[cdn.certs]]\nacme = true\nnames = \"distributions\"";

    #[test]
    fn distributions_names_are_every_host_a_ca_can_certify() {
        let cdn = load(r#"data_dir = "data""#, CA, ACME_CERT).unwrap();
        assert_eq!(cdn.acme_certs[0].names, ["home.test", "www.home.test"]);
        let acme = cdn.acme.unwrap();
        assert_eq!(acme.challenge, Challenge::TlsAlpn01);
        assert_eq!(acme.renew_before, DEFAULT_RENEW_BEFORE);
        assert!(cdn.certs.is_empty());
    }

    #[test]
    fn acme_mistakes_are_named() {
        let cases = [
            ("", "", ACME_CERT, "cdn.acme: ACME certificates need a CA"),
            (
                "",
                CA,
                ACME_CERT,
                "cdn.data_dir: ACME certificates need a folder",
            ),
            (
                r#"data_dir = "d""#,
                CA,
                "[[cdn.certs]]\nacme = true\nnames = [\"*.home.test\"]",
                "a wildcard can only be proved by dns-01",
            ),
            (
                r#"data_dir = "d""#,
                r#"directory = "https://ca.test/dir"
challenge = "dns-01""#,
                ACME_CERT,
                "dns-01 needs the DNS server to update",
            ),
            (
                r#"data_dir = "d""#,
                r#"directory = "http://ca.test/dir""#,
                ACME_CERT,
                "is not an https:// URL",
            ),
            (
                r#"data_dir = "d""#,
                CA,
                "[[cdn.certs]]\nacme = true\ncert = \"c.pem\"\nkey = \"k.pem\"\nnames = [\"a.test\"]",
                "leave out cert and key",
            ),
            (
                r#"data_dir = "d""#,
                CA,
                "[[cdn.certs]]\nacme = true\nnames = [\"localhost\"]",
                "not a DNS name a CA can certify",
            ),
            (
                r#"data_dir = "d""#,
                r#"directory = "https://ca.test/dir"
challenge = "dns-01"
dns = { server = "127.0.0.1", tsig_key = "k", secret = "c2hvcnQ=" }"#,
                ACME_CERT,
                "is not an address with a port",
            ),
            ("", "", "[[cdn.certs]]\ncert = \"c.pem\"", "needs cert = "),
        ];
        for (extra, acme, certs, expected) in cases {
            let error = load(extra, acme, certs).err().unwrap_or_default();
            assert!(error.contains(expected), "{expected:?} in:\n{error}");
        }
    }

    #[test]
    fn certificate_names_are_dns_names_or_wildcards() {
        assert_eq!(dns_name("WWW.Example.org.").unwrap(), "www.example.org");
        assert_eq!(dns_name("*.example.org").unwrap(), "*.example.org");
        for bad in [
            "localhost",
            "*.*.example.org",
            "a..b",
            "-a.b",
            "127.0.0.1",
            "a b.c",
            "",
        ] {
            assert!(dns_name(bad).is_err(), "{bad}");
        }
    }
}
