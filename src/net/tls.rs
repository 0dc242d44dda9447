//! TLS for every server and client: the CDN's and the stream API's HTTPS listeners (PEM
//! certificates chosen by SNI against their names, modern protocol versions only: TLS 1.2
//! and 1.3, ring's suites; ALPN h2 and http/1.1; self-signed development certificates
//! written where configured files are missing), and the client side of origins and health
//! checks ([`client_config`]) and CDN parent tiers ([`client_config_trusting`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tracing::{info, warn};

use crate::acme::{ALPN_CHALLENGE, AcmeCerts};
use crate::config::CdnConfig;
use crate::config::cdn::CertFiles;

mod client;
mod validity;

pub use client::{client_config, client_config_trusting};
pub use validity::validity;

/// Why the TLS setup failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate in it")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no PEM private key in it ({reason})")]
    NoKey { path: PathBuf, reason: String },
    #[error("{cert} and {key} do not form a usable certificate: {source}")]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("generating a development certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The server config for every HTTPS listener of `cdn`.
///
/// # Errors
/// A certificate or key that cannot be read, parsed or paired.
pub fn server_config(
    cdn: &CdnConfig,
    acme: Option<&Arc<AcmeCerts>>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut certs = Vec::new();
    for files in &cdn.certs {
        certs.push(load(files, &provider)?);
    }
    let resolver = SniResolver {
        certs,
        acme: acme.cloned(),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Last, so it is chosen only by the CA's validation handshakes, which offer nothing else.
    if acme.is_some_and(|a| a.answers_alpn) {
        config.alpn_protocols.push(ALPN_CHALLENGE.to_vec());
    }
    Ok(Arc::new(config))
}

/// Reads, parses and pairs a certificate and its key as a start would, for `check`.
///
/// # Errors
/// A file that cannot be read, no PEM certificate or key in it, or a key that does not
/// match the certificate.
pub fn check_pair(files: &CertFiles) -> Result<(), TlsError> {
    load(files, &rustls::crypto::ring::default_provider()).map(drop)
}

/// The subject of the development certificates we write: how a later start knows a
/// certificate is ours to renew.
const DEV_CERT_SUBJECT: &str = "edgewise development certificate";
/// A development certificate is valid for about a year, like a real one, and from a day
/// back, so a client whose clock is a little behind still accepts it.
const DEV_CERT_VALIDITY: Duration = Duration::from_secs(365 * 86_400);
/// Why a certificate is rewritten when its file holds none.
const UNREADABLE: &str = "the file held no certificate";
const CLOCK_SKEW: Duration = Duration::from_secs(86_400);
/// Renewed at start once it has less than this left.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// Writes a self-signed certificate for `names` to `files` (the dev certificate), valid
/// from a day ago for a year.
///
/// # Errors
/// Generation or writing failed.
pub fn generate(files: &CertFiles, names: &[String]) -> Result<(), TlsError> {
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, DEV_CERT_SUBJECT);
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    params.not_before = epoch + now.saturating_sub(CLOCK_SKEW);
    params.not_after = epoch + now + DEV_CERT_VALIDITY;
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    write(&files.cert, cert.pem().as_bytes())?;
    write(&files.key, key.serialize_pem().as_bytes())?;
    Ok(())
}

/// Generates every configured certificate that is missing, renews the development
/// certificates we wrote once they expire within 30 days, and replaces a file that holds
/// no readable certificate (moved aside first); for the hosts of all
/// distributions plus localhost and the loopback addresses. Returns what was written.
///
/// # Errors
/// Generation or writing failed.
pub fn generate_missing(cdn: &CdnConfig) -> Result<Vec<PathBuf>, TlsError> {
    let names = dev_cert_names(cdn);
    let mut written = Vec::new();
    for files in &cdn.certs {
        let Some(why) = dev_cert_due(files, SystemTime::now()) else {
            continue;
        };
        if why == UNREADABLE {
            set_aside(files)?;
        }
        generate(files, &names)?;
        info!(cert = %files.cert.display(), key = %files.key.display(), "wrote a self-signed development certificate for {} ({why})", names.join(", "));
        written.push(files.cert.clone());
    }
    Ok(written)
}

/// Why the certificate `files` should be (re)written as a development certificate at
/// `now`, if it should. A certificate someone else issued is never replaced.
fn dev_cert_due(files: &CertFiles, now: SystemTime) -> Option<&'static str> {
    if !files.cert.exists() {
        return (!files.key.exists()).then_some("it was missing");
    }
    let pem = std::fs::read(&files.cert).ok()?;
    let Some(der) = CertificateDer::pem_slice_iter(&pem).find_map(Result::ok) else {
        return Some(UNREADABLE);
    };
    // Earlier versions wrote rcgen's default subject, which others use too: those stay.
    if !contains(&der, DEV_CERT_SUBJECT.as_bytes()) {
        return None;
    }
    let Some(not_after) = validity::not_after(&der) else {
        return Some("the certificate was unreadable");
    };
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let left = not_after.saturating_sub(i64::try_from(now).unwrap_or(i64::MAX));
    (left < RENEW_BEFORE.as_secs() as i64).then_some("the old one expired or was about to")
}

/// Renames the files of an unreadable certificate to `<name>.unreadable`, so writing a
/// development certificate in their place loses nothing (the key may be someone's).
fn set_aside(files: &CertFiles) -> Result<(), TlsError> {
    for path in [&files.cert, &files.key] {
        let mut aside = path.clone().into_os_string();
        aside.push(".unreadable");
        match std::fs::rename(path, &aside) {
            Ok(()) => {
                warn!(file = %path.display(), "moved an unreadable certificate file aside to {}", Path::new(&aside).display())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(TlsError::Write {
                    path: path.clone(),
                    source,
                });
            }
        }
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The names a development certificate covers: every distribution host, localhost and the
/// loopback addresses.
pub fn dev_cert_names(cdn: &CdnConfig) -> Vec<String> {
    let mut names: Vec<String> = cdn
        .distributions
        .iter()
        .flat_map(|d| d.hosts.iter().cloned())
        .collect();
    names.extend([
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ]);
    names.sort();
    names.dedup();
    names
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    let fail = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(path, bytes).map_err(fail)
}

fn load(files: &CertFiles, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(&files.cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, provider)
        .map(Arc::new)
        .map_err(|source| TlsError::Unusable {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })
}

/// Picks an ACME certificate covering the SNI name, else the first certificate file valid
/// for it; clients without SNI (an IP literal) or with a name no certificate covers get the
/// first file's (or the first ACME certificate without files). A tls-alpn-01 validation
/// handshake gets its challenge certificate, or nothing.
#[derive(Debug)]
struct SniResolver {
    certs: Vec<Arc<CertifiedKey>>,
    acme: Option<Arc<AcmeCerts>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(acme) = &self.acme {
            let validating = acme.answers_alpn
                && hello
                    .alpn()
                    .is_some_and(|mut offered| offered.any(|p| p == ALPN_CHALLENGE));
            if validating {
                return acme.alpn_challenge(hello.server_name()?);
            }
            if let Some(key) = hello.server_name().and_then(|name| acme.for_name(name)) {
                return Some(key);
            }
        }
        let by_name = hello.server_name().and_then(|name| {
            let name = ServerName::try_from(name).ok()?;
            self.certs.iter().find(|key| {
                key.end_entity_cert()
                    .ok()
                    .and_then(|der| webpki::EndEntityCert::try_from(der).ok())
                    .is_some_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
            })
        });
        by_name
            .or_else(|| self.certs.first())
            .cloned()
            .or_else(|| Some(self.acme.as_ref()?.slots().first()?.current()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn files(dir: &Path) -> CertFiles {
        CertFiles {
            cert: dir.join("certs/cert.pem"),
            key: dir.join("certs/key.pem"),
        }
    }

    #[test]
    fn dev_certificates_last_a_year_from_a_day_ago() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        generate(&files, &["localhost".to_string()]).unwrap();
        let pem = std::fs::read(&files.cert).unwrap();
        let der = CertificateDer::pem_slice_iter(&pem)
            .next()
            .unwrap()
            .unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let left = validity::not_after(&der).unwrap() - now;
        assert!(
            (364 * 86_400..=365 * 86_400).contains(&left),
            "{left} s left"
        );
        check_pair(&files).unwrap();
    }

    #[test]
    fn our_certificates_are_renewed_near_expiry_and_others_never() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        let now = SystemTime::now();
        assert_eq!(dev_cert_due(&files, now), Some("it was missing"));
        generate(&files, &["localhost".to_string()]).unwrap();
        assert_eq!(dev_cert_due(&files, now), None);
        assert_eq!(dev_cert_due(&files, now + 330 * DAY), None);
        assert!(dev_cert_due(&files, now + 340 * DAY).is_some());
        assert!(dev_cert_due(&files, now + 400 * DAY).is_some());

        // rcgen's defaults, as earlier versions and many tools write them, are not ours.
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(&files.cert, other.cert.pem()).unwrap();
        assert_eq!(dev_cert_due(&files, now), None);

        std::fs::write(&files.cert, "garbage").unwrap();
        assert_eq!(dev_cert_due(&files, now), Some(UNREADABLE));
        set_aside(&files).unwrap();
        let aside = dir.path().join("certs/cert.pem.unreadable");
        assert_eq!(std::fs::read(aside).unwrap(), b"garbage");
        assert!(dir.path().join("certs/key.pem.unreadable").exists());
        assert_eq!(dev_cert_due(&files, now), Some("it was missing"));

        // Someone else's certificate, even an expired one, is left alone.
        let mut params = rcgen::CertificateParams::new(vec!["example.org".to_string()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "example.org");
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&files.cert, params.self_signed(&key).unwrap().pem()).unwrap();
        assert_eq!(dev_cert_due(&files, now), None);
    }
}
