//! A signed zone's keys: generated on first use, kept in BIND's file format (so
//! `dnssec-dsfromkey`, `dnssec-verify`, `ldns-signzone` and the other tools of the field read
//! them), loaded at every start and reload.
//!
//! One key per zone and algorithm to start with: a CSK (flags 257, ZONE and SEP), which
//! signs everything and whose DS goes to the parent, as Route 53 and Knot do by default.
//! Every key of the zone's algorithm found in the folder is loaded and signs, so a second
//! key placed there (a roll) is published and used at the next reload.
//!
//! On disk, for zone `home.test.` and key tag 12345 of algorithm 13:
//! - `Khome.test.+013+12345.key`: a comment and the DNSKEY record, as BIND writes it;
//! - `Khome.test.+013+12345.private`: `Private-key-format: v1.3`, `Algorithm: 13
//!   (ECDSAP256SHA256)`, `PrivateKey: <base64>` (the P-256 scalar, or the Ed25519 seed) and
//!   the key's timestamps; mode 0600, in a folder made 0700.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hickory_proto::rr::Name;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use sha2::{Digest, Sha256};
use tracing::info;

use super::sign::put_canonical_name;
use crate::config::dns::DnssecAlgorithm;
use crate::dns::journal::{replace_file_with_mode, sync_parent};

/// ZONE (256) and SEP (1): a key that signs the zone and that the parent's DS names.
const CSK_FLAGS: u16 = 257;
/// The DNSKEY protocol field, always 3 (RFC 4034 §2.1.2).
const PROTOCOL: u8 = 3;
/// SHA-256, the DS digest type every validator knows (RFC 4509).
const DS_SHA256: u8 = 2;
/// TTL printed with the DNSKEY and DS records (`ds`, the `.key` file).
const PRINTED_TTL: u32 = 3600;

/// Why a zone's keys could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("generating a key for {zone}: the system's random source failed")]
    Random { zone: Name },
}

/// One signing key, ready to sign: the ring key pair is built once, at load.
pub struct SigningKey {
    algorithm: DnssecAlgorithm,
    flags: u16,
    /// The DNSKEY public key field: x and y for P-256 (RFC 6605), 32 bytes for Ed25519.
    public: Vec<u8>,
    tag: u16,
    pair: Pair,
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// Never the private key.
impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm.number())
            .field("flags", &self.flags)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn algorithm(&self) -> DnssecAlgorithm {
        self.algorithm
    }

    pub fn flags(&self) -> u16 {
        self.flags
    }

    /// The key tag (RFC 4034 Appendix B) that RRSIG and DS name it by.
    pub fn tag(&self) -> u16 {
        self.tag
    }

    /// The DNSKEY RDATA: flags, protocol 3, algorithm, public key (RFC 4034 §2.1).
    pub fn dnskey_rdata(&self) -> Vec<u8> {
        dnskey_rdata(self.flags, self.algorithm, &self.public)
    }

    /// The signature field of an RRSIG over `data`: r and s for P-256 (RFC 6605 §4),
    /// the 64-byte signature for Ed25519 (RFC 8080 §4).
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        match &self.pair {
            // ring signs P-256 only with randomness: an error means the OS's source failed,
            // and an RRSIG without a signature then fails to validate, visibly.
            Pair::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), data)
                .map(|sig| sig.as_ref().to_vec())
                .unwrap_or_default(),
            Pair::Ed25519(pair) => pair.sign(data).as_ref().to_vec(),
        }
    }

    /// The DS RDATA for the parent: tag, algorithm, SHA-256 of owner and DNSKEY RDATA
    /// (RFC 4034 §5.1.4).
    pub fn ds_rdata(&self, zone: &Name) -> Vec<u8> {
        let mut digested = Vec::with_capacity(128);
        put_canonical_name(&mut digested, zone);
        digested.extend_from_slice(&self.dnskey_rdata());
        let mut rdata = self.tag.to_be_bytes().to_vec();
        rdata.push(self.algorithm.number());
        rdata.push(DS_SHA256);
        rdata.extend_from_slice(&Sha256::digest(&digested));
        rdata
    }

    /// `zone. 3600 IN DNSKEY 257 3 13 <base64>`.
    pub fn dnskey_text(&self, zone: &Name) -> String {
        format!(
            "{} {PRINTED_TTL} IN DNSKEY {} {PROTOCOL} {} {}",
            absolute(zone),
            self.flags,
            self.algorithm.number(),
            BASE64.encode(&self.public)
        )
    }

    /// `zone. 3600 IN DS <tag> 13 2 <HEX>`.
    pub fn ds_text(&self, zone: &Name) -> String {
        let rdata = self.ds_rdata(zone);
        format!(
            "{} {PRINTED_TTL} IN DS {} {} {DS_SHA256} {}",
            absolute(zone),
            self.tag,
            self.algorithm.number(),
            hex::encode_upper(&rdata[4..])
        )
    }
}

/// The zone's keys of `algorithm` from `dir`; when it has none, a new CSK generated and
/// written there first.
///
/// # Errors
/// The folder or a key file that cannot be read or written, or a key file that is not a
/// key of this zone in BIND's format.
pub fn load_or_generate(
    dir: &Path,
    zone: &Name,
    algorithm: DnssecAlgorithm,
) -> Result<Vec<SigningKey>, KeyError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Io { path, source }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let prefix = key_prefix(zone, algorithm);
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.to_lowercase().starts_with(&prefix.to_lowercase()) && name.ends_with(".private") {
            paths.push(path);
        }
    }
    paths.sort();
    let mut keys = (paths.iter())
        .map(|path| load(path, algorithm))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        let key = generate(zone, algorithm)?;
        let base = dir.join(key_base(zone, algorithm, key.0.tag));
        write_files(&base, zone, &key)?;
        info!(
            "zone {zone}: new DNSSEC key {} (algorithm {}) in {}.key/.private; give the parent its DS (edgewise-dns ds {zone})",
            key.0.tag,
            algorithm.number(),
            base.display()
        );
        keys.push(key.0);
    }
    Ok(keys)
}

/// Makes a new CSK beside the zone's keys: the first step of a key roll. From the next
/// reload both keys are published and sign every RRset, so resolvers that trust either
/// validate; once the parent's DS names the new key (and the old DS's TTL has passed),
/// [`retire_key`] takes the old one out.
///
/// # Errors
/// The folder cannot be read or written, or the zone's keys there are broken.
pub fn add_key(
    dir: &Path,
    zone: &Name,
    algorithm: DnssecAlgorithm,
) -> Result<SigningKey, KeyError> {
    let existing = load_or_generate(dir, zone, algorithm)?;
    let key = loop {
        let key = generate(zone, algorithm)?;
        // A tag is 16 bits: a new key must not be confused with an old one by it.
        if existing.iter().all(|old| old.tag != key.0.tag) {
            break key;
        }
    };
    write_files(&dir.join(key_base(zone, algorithm, key.0.tag)), zone, &key)?;
    Ok(key.0)
}

/// Moves the files of the zone's key `tag` into `retired/` under `dir`: the last step of a
/// key roll, from the next reload on it neither signs nor is published. The zone's last
/// key cannot be retired.
///
/// # Errors
/// No such key, the last key, or files that cannot be moved.
pub fn retire_key(
    dir: &Path,
    zone: &Name,
    algorithm: DnssecAlgorithm,
    tag: u16,
) -> Result<(), KeyError> {
    let keys = load_or_generate(dir, zone, algorithm)?;
    let refuse = |message: String| KeyError::Malformed {
        path: dir.to_path_buf(),
        message,
    };
    if !keys.iter().any(|k| k.tag == tag) {
        let tags: Vec<u16> = keys.iter().map(|k| k.tag).collect();
        return Err(refuse(format!(
            "{zone} has no key {tag} (its keys: {tags:?})"
        )));
    }
    if keys.len() == 1 {
        return Err(refuse(format!(
            "key {tag} is the last key of {zone}: add its successor first (edgewise-dns key roll)"
        )));
    }
    let retired = dir.join("retired");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&retired)
        .map_err(|source| KeyError::Io {
            path: retired.clone(),
            source,
        })?;
    let base = key_base(zone, algorithm, tag);
    // The private half first: without it the key is no longer loaded, whatever happens next.
    for extension in ["private", "key"] {
        let name = format!("{base}.{extension}");
        fs::rename(dir.join(&name), retired.join(&name)).map_err(|source| KeyError::Io {
            path: dir.join(&name),
            source,
        })?;
    }
    Ok(())
}

/// `K<zone>+<algorithm>+<tag>`, the name of a key's files without extension.
fn key_base(zone: &Name, algorithm: DnssecAlgorithm, tag: u16) -> String {
    format!("{}{tag:05}", key_prefix(zone, algorithm))
}

/// `K<zone>+<algorithm>+`: what the names of a zone's key files of `algorithm` begin with.
fn key_prefix(zone: &Name, algorithm: DnssecAlgorithm) -> String {
    format!(
        "K{}+{:03}+",
        absolute(zone).to_lowercase(),
        algorithm.number()
    )
}

/// A new key and its private part as BIND writes it (the scalar or the seed).
fn generate(zone: &Name, algorithm: DnssecAlgorithm) -> Result<(SigningKey, Vec<u8>), KeyError> {
    let random = SystemRandom::new();
    let failed = || KeyError::Random { zone: zone.clone() };
    let (private, public) = match algorithm {
        DnssecAlgorithm::EcdsaP256Sha256 => {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &random)
                .map_err(|_| failed())?;
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &random)
                    .map_err(|_| failed())?;
            let scalar = p256_scalar(pkcs8.as_ref()).ok_or_else(failed)?.to_vec();
            (scalar, Some(pair.public_key().as_ref()[1..].to_vec()))
        }
        DnssecAlgorithm::Ed25519 => {
            let mut seed = vec![0; 32];
            random.fill(&mut seed).map_err(|_| failed())?;
            (seed, None)
        }
    };
    // The scalar read back must make the key ring made: checks the PKCS#8 reading too.
    let key = key_of(algorithm, &private, public.as_deref()).map_err(|_| failed())?;
    Ok((key, private))
}

/// The private scalar in ring's PKCS#8 document of a P-256 key: the 32-byte OCTET STRING
/// after the version of the ECPrivateKey (RFC 5915) it wraps.
fn p256_scalar(pkcs8: &[u8]) -> Option<&[u8]> {
    const MARK: [u8; 5] = [0x02, 0x01, 0x01, 0x04, 0x20];
    let at = pkcs8.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    pkcs8.get(at..at + 32)
}

/// The key pair of `private` (scalar or seed), checked against `public` when the `.key`
/// file gave one.
fn key_of(
    algorithm: DnssecAlgorithm,
    private: &[u8],
    public: Option<&[u8]>,
) -> Result<SigningKey, String> {
    let (pair, own_public) = match algorithm {
        DnssecAlgorithm::EcdsaP256Sha256 => {
            let public = public.ok_or("a P-256 key needs its .key file beside it")?;
            if public.len() != 64 || private.len() != 32 {
                return Err("not a P-256 key (a 32-byte private and a 64-byte public key)".into());
            }
            let mut point = vec![0x04];
            point.extend_from_slice(public);
            let pair = EcdsaKeyPair::from_private_key_and_public_key(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                private,
                &point,
                &SystemRandom::new(),
            )
            .map_err(|_| "the private key does not match the public key of the .key file")?;
            let own = pair.public_key().as_ref()[1..].to_vec();
            (Pair::Ecdsa(pair), own)
        }
        DnssecAlgorithm::Ed25519 => {
            let pair = Ed25519KeyPair::from_seed_unchecked(private)
                .map_err(|_| "not an Ed25519 key (a 32-byte seed)")?;
            let own = pair.public_key().as_ref().to_vec();
            if public.is_some_and(|p| p != own) {
                return Err(
                    "the private key does not match the public key of the .key file".into(),
                );
            }
            (Pair::Ed25519(pair), own)
        }
    };
    let rdata = dnskey_rdata(CSK_FLAGS, algorithm, &own_public);
    Ok(SigningKey {
        algorithm,
        flags: CSK_FLAGS,
        tag: key_tag(&rdata),
        public: own_public,
        pair,
    })
}

/// Loads the key of `path` (`.private`) and the `.key` file beside it.
fn load(path: &Path, algorithm: DnssecAlgorithm) -> Result<SigningKey, KeyError> {
    let malformed = |path: &Path, message: String| KeyError::Malformed {
        path: path.to_path_buf(),
        message,
    };
    let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let number = field("Algorithm").and_then(|a| a.split_whitespace().next());
    if number != Some(&algorithm.number().to_string()) {
        let found = number.unwrap_or("none");
        return Err(malformed(
            path,
            format!("algorithm {found}, not {}", algorithm.number()),
        ));
    }
    let private = field("PrivateKey")
        .and_then(|b64| BASE64.decode(b64).ok())
        .ok_or_else(|| malformed(path, "no readable PrivateKey line".into()))?;
    let public_path = path.with_extension("key");
    let public = read_public(&public_path, algorithm)?;
    let key = key_of(
        algorithm,
        &private,
        public.as_ref().map(|(_, p)| p.as_slice()),
    )
    .map_err(|m| malformed(path, m))?;
    let named = (path.file_stem().and_then(|stem| stem.to_str()))
        .and_then(|stem| stem.rsplit('+').next())
        .and_then(|tag| tag.parse::<u16>().ok());
    match public {
        Some((flags, _)) if flags != key.flags => Err(malformed(
            &public_path,
            format!("flags {flags}: only a CSK (257) is used"),
        )),
        _ if named != Some(key.tag) => Err(malformed(
            path,
            format!(
                "the file names key tag {named:?}, but the key's tag is {}",
                key.tag
            ),
        )),
        _ => Ok(key),
    }
}

/// The flags and public key of the DNSKEY record in a `.key` file; None when there is no
/// such file (an Ed25519 key's public half follows from its seed).
fn read_public(
    path: &Path,
    algorithm: DnssecAlgorithm,
) -> Result<Option<(u16, Vec<u8>)>, KeyError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(KeyError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let malformed = |line: usize, message: &str| KeyError::Malformed {
        path: path.to_path_buf(),
        message: format!("line {line}: {message}"),
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.split(';').next().unwrap_or_default();
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| w.eq_ignore_ascii_case("DNSKEY")) else {
            continue;
        };
        let fields = &words[at + 1..];
        if fields.len() < 4 {
            return Err(malformed(
                n + 1,
                "a DNSKEY record needs flags, protocol, algorithm and key",
            ));
        }
        let flags: u16 = fields[0]
            .parse()
            .map_err(|_| malformed(n + 1, "flags are not a number"))?;
        if fields[2] != algorithm.number().to_string() {
            return Err(malformed(n + 1, "the DNSKEY is of another algorithm"));
        }
        let public = BASE64
            .decode(fields[3..].concat())
            .map_err(|_| malformed(n + 1, "the public key is not base64"))?;
        return Ok(Some((flags, public)));
    }
    Err(malformed(0, "no DNSKEY record"))
}

/// Writes the `.key` and `.private` files of `key` at `base` (no extension), each to a
/// temporary name first and then renamed, the private one readable by its owner only.
fn write_files(base: &Path, zone: &Name, key: &(SigningKey, Vec<u8>)) -> Result<(), KeyError> {
    let (key, private) = key;
    let now = timestamp();
    let name = algorithm_name(key.algorithm);
    let public = format!(
        "; This is a key-signing key, keyid {}, for {}\n; Created: {now}\n{}\n",
        key.tag,
        absolute(zone),
        key.dnskey_text(zone)
    );
    let secret = format!(
        "Private-key-format: v1.3\nAlgorithm: {} ({name})\nPrivateKey: {}\nCreated: {now}\nPublish: {now}\nActivate: {now}\n",
        key.algorithm.number(),
        BASE64.encode(private)
    );
    // The public half first: a crash between the two leaves a `.key` alone, which no load
    // picks up (keys are found by their `.private`), and the next start makes a new key.
    for (extension, content, mode) in [("key", public, 0o644), ("private", secret, 0o600)] {
        let path = path_with(base, extension);
        replace_file_with_mode(&path, content.as_bytes(), mode)
            .and_then(|_| sync_parent(&path))
            .map_err(|source| KeyError::Io { path, source })?;
    }
    Ok(())
}

/// `base` with `.extension` appended (its name has dots of its own: `with_extension` would
/// replace the last label).
fn path_with(base: &Path, extension: &str) -> PathBuf {
    let mut path = base.as_os_str().to_owned();
    path.push(".");
    path.push(extension);
    PathBuf::from(path)
}

fn dnskey_rdata(flags: u16, algorithm: DnssecAlgorithm, public: &[u8]) -> Vec<u8> {
    let mut rdata = flags.to_be_bytes().to_vec();
    rdata.push(PROTOCOL);
    rdata.push(algorithm.number());
    rdata.extend_from_slice(public);
    rdata
}

/// RFC 4034 Appendix B: the ones'-complement-like sum of the RDATA's 16-bit words.
fn key_tag(rdata: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for (i, &byte) in rdata.iter().enumerate() {
        sum += if i % 2 == 0 {
            u32::from(byte) << 8
        } else {
            u32::from(byte)
        };
    }
    sum += (sum >> 16) & 0xffff;
    (sum & 0xffff) as u16
}

/// The zone's name with its final dot, lowercase, as key files and records write it.
fn absolute(name: &Name) -> String {
    let mut name = name.to_lowercase();
    name.set_fqdn(true);
    name.to_string()
}

fn algorithm_name(algorithm: DnssecAlgorithm) -> &'static str {
    match algorithm {
        DnssecAlgorithm::EcdsaP256Sha256 => "ECDSAP256SHA256",
        DnssecAlgorithm::Ed25519 => "ED25519",
    }
}

/// Now as BIND's key timestamps: `YYYYMMDDHHMMSS`, UTC.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let basic = crate::stream::api::sigv4::format_basic(i64::try_from(secs).unwrap_or(0));
    basic.replace(['T', 'Z'], "")
}

#[cfg(test)]
mod tests;
