//! TLS for the CDN: PEM certificates chosen by SNI against their names, modern protocol
//! versions only (TLS 1.2 and 1.3, ring's suites), ALPN h2 and http/1.1, and self-signed
//! development certificates written where configured files are missing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tracing::info;

use crate::config::CdnConfig;
use crate::config::cdn::CertFiles;

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
pub fn server_config(cdn: &CdnConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut certs = Vec::new();
    for files in &cdn.certs {
        certs.push(load(files, &provider)?);
    }
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { certs }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Writes a self-signed certificate for `names` to `files` (the dev certificate).
///
/// # Errors
/// Generation or writing failed.
pub fn generate(files: &CertFiles, names: &[String]) -> Result<(), TlsError> {
    let generated = rcgen::generate_simple_self_signed(names.to_vec())?;
    write(&files.cert, generated.cert.pem().as_bytes())?;
    write(&files.key, generated.signing_key.serialize_pem().as_bytes())?;
    Ok(())
}

/// Generates every configured certificate whose files are missing, for the hosts of all
/// distributions plus localhost and the loopback addresses. Returns what was written.
///
/// # Errors
/// Generation or writing failed.
pub fn generate_missing(cdn: &CdnConfig) -> Result<Vec<PathBuf>, TlsError> {
    let names = dev_cert_names(cdn);
    let mut written = Vec::new();
    for files in cdn
        .certs
        .iter()
        .filter(|f| !f.cert.exists() && !f.key.exists())
    {
        generate(files, &names)?;
        info!(cert = %files.cert.display(), key = %files.key.display(), "wrote a self-signed development certificate for {}", names.join(", "));
        written.push(files.cert.clone());
    }
    Ok(written)
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

/// Picks the first certificate valid for the SNI name; clients without SNI (an IP literal)
/// or with a name no certificate covers get the first one.
#[derive(Debug)]
struct SniResolver {
    certs: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let by_name = hello.server_name().and_then(|name| {
            let name = ServerName::try_from(name).ok()?;
            self.certs.iter().find(|key| {
                key.end_entity_cert()
                    .ok()
                    .and_then(|der| webpki::EndEntityCert::try_from(der).ok())
                    .is_some_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
            })
        });
        by_name.or_else(|| self.certs.first()).cloned()
    }
}
