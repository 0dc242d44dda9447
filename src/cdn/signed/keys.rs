//! Key groups and PEM parsing.

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::{RsaPrivateKey, RsaPublicKey};

use super::SignedError;

/// A trusted key group: public keys named by their key id (the `Key-Pair-Id` a signer uses).
#[derive(Debug, Clone)]
pub struct KeyGroup {
    pub id: String,
    pub keys: Vec<(String, RsaPublicKey)>,
}

impl KeyGroup {
    /// A group from `(key id, PEM)` pairs.
    pub fn from_pems<'a>(
        id: impl Into<String>,
        pems: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<KeyGroup, SignedError> {
        let keys = pems
            .into_iter()
            .map(|(key_id, pem)| Ok((key_id.to_string(), parse_public_key_pem(pem)?)))
            .collect::<Result<Vec<_>, SignedError>>()?;
        Ok(KeyGroup {
            id: id.into(),
            keys,
        })
    }
}

/// The label of the first PEM block in `pem`, if any.
fn pem_label(pem: &str) -> Option<&str> {
    let start = pem.find("-----BEGIN ")? + "-----BEGIN ".len();
    let len = pem[start..].find("-----")?;
    Some(&pem[start..start + len])
}

/// Parses an RSA public key: `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY` (PKCS#1).
pub fn parse_public_key_pem(pem: &str) -> Result<RsaPublicKey, SignedError> {
    let pem = pem.trim();
    let parsed = match pem_label(pem) {
        Some("PUBLIC KEY") => RsaPublicKey::from_public_key_pem(pem)
            .map_err(|e| SignedError::PublicKey(e.to_string())),
        Some("RSA PUBLIC KEY") => {
            RsaPublicKey::from_pkcs1_pem(pem).map_err(|e| SignedError::PublicKey(e.to_string()))
        }
        Some(other) => Err(SignedError::PublicKey(format!(
            "expected a PUBLIC KEY or RSA PUBLIC KEY block, found {other}"
        ))),
        None => Err(SignedError::PublicKey("no PEM block found".into())),
    }?;
    check_size(rsa::traits::PublicKeyParts::size(&parsed)).map_err(SignedError::PublicKey)?;
    Ok(parsed)
}

/// Parses an RSA private key: `RSA PRIVATE KEY` (PKCS#1) or `PRIVATE KEY` (PKCS#8, unencrypted).
pub fn parse_private_key_pem(pem: &str) -> Result<RsaPrivateKey, SignedError> {
    let pem = pem.trim();
    let parsed =
        match pem_label(pem) {
            Some("RSA PRIVATE KEY") => RsaPrivateKey::from_pkcs1_pem(pem)
                .map_err(|e| SignedError::PrivateKey(e.to_string())),
            Some("PRIVATE KEY") => RsaPrivateKey::from_pkcs8_pem(pem)
                .map_err(|e| SignedError::PrivateKey(e.to_string())),
            Some("ENCRYPTED PRIVATE KEY") => Err(SignedError::PrivateKey(
                "encrypted private keys are not supported".into(),
            )),
            Some(other) => Err(SignedError::PrivateKey(format!(
                "expected an RSA PRIVATE KEY or PRIVATE KEY block, found {other}"
            ))),
            None => Err(SignedError::PrivateKey("no PEM block found".into())),
        }?;
    check_size(rsa::traits::PublicKeyParts::size(&parsed)).map_err(SignedError::PrivateKey)?;
    Ok(parsed)
}

/// CloudFront takes 2048-bit keys; accept 1024..=4096 (rsa's own limit) for homelab use.
fn check_size(bytes: usize) -> Result<(), String> {
    if (128..=512).contains(&bytes) {
        Ok(())
    } else {
        Err(format!("unsupported RSA key size of {} bits", bytes * 8))
    }
}
