//! `[[dns.tsig_keys]]`: the shared secrets TSIG (RFC 8945) signs transfers, NOTIFY and
//! updates with.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hickory_proto::rr::Name;
use toml::Spanned;

use crate::config::diag::{ConfigError, SourceMap};
use crate::config::raw::RawTsigKey;
use crate::dns::tsig::Algorithm;

/// Shortest secret we accept: 128 bits, so the key cannot be found by trying (RFC 8945 §6
/// asks for secrets as long as the MAC; `tsig-keygen` makes those).
const MIN_SECRET_LEN: usize = 16;

/// One validated `[[dns.tsig_keys]]` entry.
#[derive(Debug, Clone)]
pub struct TsigKeyConfig {
    /// Lowercase and absolute; unique among the keys.
    pub name: Name,
    /// Defaults to `hmac-sha256`.
    pub algorithm: Algorithm,
    pub secret: Secret,
}

/// A decoded secret, at least 16 bytes; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Validates every key, pushing each problem onto `errors`; `base` is the config file's
/// folder, which `secret_file` paths are relative to.
pub(super) fn validate(
    raw: &[Spanned<RawTsigKey>],
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Vec<TsigKeyConfig> {
    let mut keys: Vec<TsigKeyConfig> = Vec::new();
    for (i, entry) in raw.iter().enumerate() {
        let key = format!("dns.tsig_keys[{i}]");
        let Some(valid) = one_key(entry, &key, map, base, errors) else {
            continue;
        };
        if keys.iter().any(|k| k.name == valid.name) {
            let name = &entry.get_ref().name;
            errors.push(map.error(
                name.span(),
                format!("{key}.name"),
                format!(
                    "key {} is defined twice (key names are compared without regard to case)",
                    valid.name
                ),
            ));
            continue;
        }
        keys.push(valid);
    }
    keys
}

/// One key, checked as a `[[dns.tsig_keys]]` entry is; also the key an ACME client signs
/// its dns-01 updates with (`[cdn.acme] dns`).
pub(in crate::config) fn one_key(
    entry: &Spanned<RawTsigKey>,
    key: &str,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<TsigKeyConfig> {
    let raw = entry.get_ref();
    let name = match Name::from_ascii(raw.name.get_ref()) {
        Ok(name) if !name.is_root() => name.to_lowercase().append_domain(&Name::root()).ok(),
        Ok(_) => None,
        Err(_) => None,
    };
    if name.is_none() {
        errors.push(map.error(
            raw.name.span(),
            format!("{key}.name"),
            format!(
                "{:?} is not a key name (a domain name such as \"xfr-key\" or \"xfr.home.example\")",
                raw.name.get_ref()
            ),
        ));
    }
    let algorithm = match &raw.algorithm {
        None => Some(Algorithm::HmacSha256),
        Some(text) => text
            .get_ref()
            .parse::<Algorithm>()
            .map_err(|message| {
                errors.push(map.error(text.span(), format!("{key}.algorithm"), message))
            })
            .ok(),
    };
    let secret = secret(raw, entry.span(), key, map, base, errors);
    Some(TsigKeyConfig {
        name: name?,
        algorithm: algorithm?,
        secret: secret?,
    })
}

/// The decoded secret of `secret` or `secret_file`, whichever is given.
fn secret(
    raw: &RawTsigKey,
    span: std::ops::Range<usize>,
    key: &str,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<Secret> {
    let (text, at, path) = match (&raw.secret, &raw.secret_file) {
        (Some(_), Some(file)) => {
            errors.push(map.error(
                file.span(),
                format!("{key}.secret_file"),
                "give the secret either inline (secret) or in a file (secret_file), not both",
            ));
            return None;
        }
        (None, None) => {
            errors.push(map.error(
                span,
                key,
                "needs a secret: secret = \"<base64>\" or secret_file = \"path\" (`edgewise-dns tsig-keygen NAME` makes one)",
            ));
            return None;
        }
        (Some(secret), None) => (
            secret.get_ref().clone(),
            (secret.span(), format!("{key}.secret")),
            None,
        ),
        (None, Some(file)) => {
            let path = base.join(file.get_ref());
            let at = (file.span(), format!("{key}.secret_file"));
            match std::fs::read_to_string(&path) {
                Ok(text) => (text, at, Some(path)),
                Err(e) => {
                    errors.push(map.error(
                        at.0,
                        at.1,
                        format!("cannot read {}: {e}", path.display()),
                    ));
                    return None;
                }
            }
        }
    };
    let whose = match &path {
        Some(path) => format!("the secret in {}", path.display()),
        None => "the secret".to_string(),
    };
    let decoded = match STANDARD.decode(text.trim()) {
        Ok(bytes) => bytes,
        Err(e) => {
            errors.push(map.error(at.0, at.1, format!("{whose} is not base64: {e}")));
            return None;
        }
    };
    if decoded.len() < MIN_SECRET_LEN {
        errors.push(map.error(
            at.0,
            at.1,
            format!(
                "{whose} is {} bytes; at least {MIN_SECRET_LEN} are needed so it cannot be found by trying (`edgewise-dns tsig-keygen` makes one as long as the MAC)",
                decoded.len()
            ),
        ));
        return None;
    }
    Some(Secret(decoded))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn load(keys: &str, dir: &Path) -> Result<Vec<TsigKeyConfig>, Vec<String>> {
        let text = format!("[dns]\n{keys}");
        let path = dir.join("tsig.toml");
        std::fs::write(&path, &text).unwrap();
        Config::load_sections(&path, crate::config::Sections::Dns)
            .map(|c| c.dns.expect("[dns]").tsig_keys)
            .map_err(|e| e.0.iter().map(|e| e.to_string()).collect())
    }

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";

    #[test]
    fn keys_read_inline_and_from_files_with_the_default_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        std::fs::write(dir.path().join("keys/b.key"), format!("  {SECRET}\n")).unwrap();
        let keys = load(
            &format!(
                "[[dns.tsig_keys]]\nname = \"XFR-Key\"\nsecret = \"{SECRET}\"\n\
                 [[dns.tsig_keys]]\nname = \"b.example.\"\nalgorithm = \"hmac-sha512\"\nsecret_file = \"keys/b.key\"\n"
            ),
            dir.path(),
        )
        .expect("valid");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].name.to_string(), "xfr-key.");
        assert_eq!(keys[0].algorithm, Algorithm::HmacSha256);
        assert_eq!(keys[0].secret.bytes(), b"secret-secret-secret-secret!");
        assert_eq!(keys[1].name.to_string(), "b.example.");
        assert_eq!(keys[1].algorithm, Algorithm::HmacSha512);
        assert_eq!(keys[1].secret, keys[0].secret);
        assert!(!format!("{:?}", keys[0]).contains("c2Vj"));
    }

    #[test]
    fn every_bad_key_is_reported_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let errors = load(
            &format!(
                "[[dns.tsig_keys]]\nname = \"a\"\nsecret = \"c2hvcnQ=\"\n\
                 [[dns.tsig_keys]]\nname = \"b\"\nsecret = \"not base64!\"\n\
                 [[dns.tsig_keys]]\nname = \"c\"\nalgorithm = \"hmac-md5\"\nsecret = \"{SECRET}\"\n\
                 [[dns.tsig_keys]]\nname = \"d\"\n\
                 [[dns.tsig_keys]]\nname = \"e\"\nsecret = \"{SECRET}\"\nsecret_file = \"e.key\"\n\
                 [[dns.tsig_keys]]\nname = \"f\"\nsecret_file = \"missing.key\"\n\
                 [[dns.tsig_keys]]\nname = \"G\"\nsecret = \"{SECRET}\"\n\
                 [[dns.tsig_keys]]\nname = \"g.\"\nsecret = \"{SECRET}\"\n\
                 [[dns.tsig_keys]]\nname = \"bad..name\"\nsecret = \"{SECRET}\"\n"
            ),
            dir.path(),
        )
        .expect_err("invalid");
        let expected = [
            (":4:10: dns.tsig_keys[0].secret", "is 5 bytes; at least 16"),
            (":7:10: dns.tsig_keys[1].secret", "is not base64"),
            (
                ":10:13: dns.tsig_keys[2].algorithm",
                "\"hmac-md5\" is not a TSIG",
            ),
            (":12:1: dns.tsig_keys[3]", "needs a secret"),
            (":17:15: dns.tsig_keys[4].secret_file", "not both"),
            (":20:15: dns.tsig_keys[5].secret_file", "cannot read"),
            (":25:8: dns.tsig_keys[7].name", "key g. is defined twice"),
            (":28:8: dns.tsig_keys[8].name", "is not a key name"),
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for (error, (at, says)) in errors.iter().zip(expected) {
            assert!(
                error.contains(at) && error.contains(says),
                "{error} ({at} {says})"
            );
        }
    }
}
