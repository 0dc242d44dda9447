//! What ACME keeps under `[cdn] data_dir`: the account per CA (`acme/account-<hash>.json`)
//! and each certificate with its key (`certs/<first name>-<hash>/{cert,key}.pem`), written
//! atomically and readable by the owner only, so a restart serves the last certificate at
//! once and a renewal never leaves a half-written file.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Why a stored file could not be used or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Unusable { path: PathBuf, why: String },
    #[error("making a stand-in certificate: {0}")]
    StandIn(#[from] rcgen::Error),
}

/// A certificate as served: the rustls key, and its expiry for renewals.
pub struct Stored {
    pub key: Arc<CertifiedKey>,
    pub not_before: i64,
    pub not_after: i64,
}

/// The files of the ACME state under one `data_dir`.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(data_dir: &Path) -> Store {
        Store {
            dir: data_dir.to_path_buf(),
        }
    }

    /// The account file for the CA at `directory`: one per CA, as an account belongs to it.
    pub fn account_file(&self, directory: &str) -> PathBuf {
        self.dir
            .join("acme")
            .join(format!("account-{}.json", short_hash(directory)))
    }

    /// The folder of the certificate for `names`.
    pub fn cert_dir(&self, names: &[String]) -> PathBuf {
        let first = names.first().map_or("cert", String::as_str);
        let label = first.replace('*', "_");
        self.dir
            .join("certs")
            .join(format!("{label}-{}", short_hash(&names.join(","))))
    }

    /// The stored certificate for `names`: `None` when there is none yet.
    ///
    /// # Errors
    /// Files that exist but cannot be read or do not form a certificate and key.
    pub fn load_cert(&self, names: &[String]) -> Result<Option<Stored>, StoreError> {
        let dir = self.cert_dir(names);
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        if !cert.exists() {
            return Ok(None);
        }
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| StoreError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        certified(&read(&cert)?, &read(&key)?)
            .map(Some)
            .map_err(|why| StoreError::Unusable { path: cert, why })
    }

    /// Writes a newly issued chain and key for `names`, replacing the old ones.
    ///
    /// # Errors
    /// A file that cannot be written.
    pub fn save_cert(&self, names: &[String], chain: &str, key: &str) -> Result<(), StoreError> {
        let dir = self.cert_dir(names);
        write_private(&dir.join("key.pem"), key.as_bytes())?;
        write_private(&dir.join("cert.pem"), chain.as_bytes())?;
        write_private(
            &dir.join("names.txt"),
            format!("{}\n", names.join("\n")).as_bytes(),
        )
    }
}

/// A chain and key (PEM) as rustls serves them, with the leaf's validity.
pub fn certified(chain_pem: &[u8], key_pem: &[u8]) -> Result<Stored, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
        .filter_map(Result::ok)
        .collect();
    let leaf = chain.first().ok_or("no PEM certificate in it")?;
    let (not_before, not_after) =
        crate::net::tls::validity(leaf).ok_or("the certificate's validity is unreadable")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("the key: {e}"))?;
    let provider = rustls::crypto::ring::default_provider();
    let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| e.to_string())?;
    Ok(Stored {
        key: Arc::new(key),
        not_before,
        not_after,
    })
}

/// A self-signed certificate for `names`, served until the CA issues the real one: clients
/// that check it fail as they would with no certificate, and those told to trust anything
/// (health checks) get through.
///
/// # Errors
/// Certificate generation failed.
pub fn stand_in(names: &[String]) -> Result<Arc<CertifiedKey>, StoreError> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "edgewise stand-in until the ACME certificate is issued",
    );
    let cert = params.self_signed(&key)?;
    let stored =
        certified(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).map_err(|why| {
            StoreError::Unusable {
                path: PathBuf::from("(stand-in)"),
                why,
            }
        })?;
    Ok(stored.key)
}

/// Writes `bytes` to `path` through a temporary file renamed over it, mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let fail = |source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut temp = path.to_path_buf().into_os_string();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&temp, path).map_err(fail)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(fail)?;
    }
    Ok(())
}

/// Eight bytes of SHA-256 in hex: a file name that tells inputs apart.
fn short_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_certificate_is_loaded_back_and_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let names = vec!["*.home.test".to_string(), "home.test".to_string()];
        assert!(store.load_cert(&names).unwrap().is_none());
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names.clone())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        store
            .save_cert(&names, &cert.pem(), &key.serialize_pem())
            .unwrap();
        let stored = store.load_cert(&names).unwrap().unwrap();
        assert!(stored.not_after > stored.not_before);
        let key_file = store.cert_dir(&names).join("key.pem");
        let mode = std::fs::metadata(key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(store.cert_dir(&names).ends_with(format!(
            "_.home.test-{}",
            short_hash("*.home.test,home.test")
        )));
    }

    #[test]
    fn a_damaged_certificate_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let names = vec!["home.test".to_string()];
        let cert_dir = store.cert_dir(&names);
        std::fs::create_dir_all(&cert_dir).unwrap();
        std::fs::write(cert_dir.join("cert.pem"), "garbage").unwrap();
        std::fs::write(cert_dir.join("key.pem"), "garbage").unwrap();
        let error = store.load_cert(&names).err().unwrap().to_string();
        assert!(error.contains("cert.pem"), "{error}");
    }
}
