//! A signed zone's keys: generated on first use, kept in BIND's file format (so
//! `dnssec-dsfromkey`, `dnssec-verify`, `ldns-signzone` and the other tools of the field read
//! them), loaded at every start and reload.
//!
//! One key per zone and algorithm to start with: a CSK (flags 257, ZONE and SEP), which
//! signs everything and whose DS goes to the parent, as Route 53 and Knot do by default.
//! Every key of the zone's algorithm found in the folder is loaded, so a second key placed
//! there (a roll) is published and used at the next reload. A zone with `zsk_lifetime` also
//! has ZSKs (flags 256), which `super::roll` makes and retires on its schedule.
//!
//! On disk, for zone `home.test.` and key tag 12345 of algorithm 13:
//! - `Khome.test.+013+12345.key`: comments (what the key is, its times: `times`) and the
//!   DNSKEY record, as BIND writes them;
//! - `Khome.test.+013+12345.private`: `Private-key-format: v1.3`, `Algorithm: 13
//!   (ECDSAP256SHA256)`, `PrivateKey: <base64>` (the P-256 scalar, or the Ed25519 seed) and
//!   the key's times; mode 0600, in a folder made 0700.

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
use crate::dns::transfer::unix_now;

mod times;

pub use times::{KeyTimes, stamp};

/// ZONE (256) and SEP (1): a key that the parent's DS names (a KSK, or a CSK signing all).
pub const KSK_FLAGS: u16 = 257;
/// ZONE alone: a key that signs the zone's data, not named by the parent (a ZSK).
pub const ZSK_FLAGS: u16 = 256;
/// The Secure Entry Point flag of DNSKEY (RFC 4034 §2.1.1): the key the DS names.
const SEP: u16 = 1;
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
    /// Its times, from the `.key` file's comments (none in folders made before them).
    times: KeyTimes,
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

    /// Whether the parent's DS may name it (SEP): a KSK or CSK, not a ZSK.
    pub fn is_ksk(&self) -> bool {
        self.flags & SEP != 0
    }

    pub fn times(&self) -> KeyTimes {
        self.times
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

/// The zone's keys of `algorithm` from `dir`; when none of them is a KSK (a new zone), a new
/// CSK generated and written there first.
///
/// # Errors
/// The folder or a key file that cannot be read or written, or a key file that is not a
/// key of this zone in BIND's format.
pub fn load_or_generate(
    dir: &Path,
    zone: &Name,
    algorithm: DnssecAlgorithm,
) -> Result<Vec<SigningKey>, KeyError> {
    let mut keys = load_all(dir, zone, algorithm)?;
    if !keys.iter().any(SigningKey::is_ksk) {
        let times = KeyTimes::from_now(unix_now());
        let key = add(dir, zone, algorithm, KSK_FLAGS, times, &keys)?;
        info!(
            "zone {zone}: new DNSSEC key {} (algorithm {}) in {}; give the parent its DS (edgewise-dns ds {zone})",
            key.tag,
            algorithm.number(),
            dir.display()
        );
        keys.push(key);
    }
    Ok(keys)
}

/// Every key of the zone and `algorithm` in `dir` (made 0700 if missing), in file name
/// order.
fn load_all(
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
    (paths.iter()).map(|path| load(path, algorithm)).collect()
}

/// Makes a new CSK beside the zone's keys: the first step of a key roll. From the next
/// reload both keys are published and sign (with ZSKs, both sign the DNSKEY RRset), so
/// resolvers that trust either validate; once the parent's DS names the new key (and the
/// old DS's TTL has passed), [`retire_key`] takes the old one out.
///
/// # Errors
/// The folder cannot be read or written, or the zone's keys there are broken.
pub fn add_key(
    dir: &Path,
    zone: &Name,
    algorithm: DnssecAlgorithm,
) -> Result<SigningKey, KeyError> {
    let existing = load_or_generate(dir, zone, algorithm)?;
    let times = KeyTimes::from_now(unix_now());
    add(dir, zone, algorithm, KSK_FLAGS, times, &existing)
}

/// Makes a key with `flags` and `times` and writes its files in `dir`; its tag is none of
/// `existing`'s, so a new key is never confused with an old one by its 16 bits.
///
/// # Errors
/// The random source failed, or the files cannot be written.
pub fn add(
    dir: &Path,
    zone: &Name,
    algorithm: DnssecAlgorithm,
    flags: u16,
    times: KeyTimes,
    existing: &[SigningKey],
) -> Result<SigningKey, KeyError> {
    let (key, private) = loop {
        let made = generate(zone, algorithm, flags, times)?;
        if existing.iter().all(|old| old.tag != made.0.tag) {
            break made;
        }
    };
    let base = dir.join(key_base(zone, algorithm, key.tag));
    let secret = format!(
        "Private-key-format: v1.3\nAlgorithm: {} ({})\nPrivateKey: {}\n",
        algorithm.number(),
        algorithm_name(algorithm),
        BASE64.encode(&private)
    );
    // The public half first: a crash between the two leaves a `.key` alone, which no load
    // picks up (keys are found by their `.private`), and the next start makes a new key.
    write_file(
        &path_with(&base, "key"),
        &key_file(zone, &key, times),
        0o644,
    )?;
    write_file(
        &path_with(&base, "private"),
        &times.into_private(&secret),
        0o600,
    )?;
    Ok(key)
}

/// Gives `key` of the zone new `times` in both its files (its `.key` last: the times are
/// read from there).
///
/// # Errors
/// The files cannot be read or written.
pub fn set_times(
    dir: &Path,
    zone: &Name,
    key: &SigningKey,
    times: KeyTimes,
) -> Result<(), KeyError> {
    let base = dir.join(key_base(zone, key.algorithm, key.tag));
    let private = path_with(&base, "private");
    let text = fs::read_to_string(&private).map_err(|source| KeyError::Io {
        path: private.clone(),
        source,
    })?;
    write_file(&private, &times.into_private(&text), 0o600)?;
    write_file(&path_with(&base, "key"), &key_file(zone, key, times), 0o644)
}

/// Moves the files of the zone's key `tag` into `retired/` under `dir`: the last step of a
/// key roll, from the next reload on it neither signs nor is published. The zone's last
/// KSK cannot be retired.
///
/// # Errors
/// No such key, the last KSK, or files that cannot be moved.
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
    let Some(key) = keys.iter().find(|k| k.tag == tag) else {
        let tags: Vec<u16> = keys.iter().map(|k| k.tag).collect();
        return Err(refuse(format!(
            "{zone} has no key {tag} (its keys: {tags:?})"
        )));
    };
    if key.is_ksk() && keys.iter().filter(|k| k.is_ksk()).count() == 1 {
        return Err(refuse(format!(
            "key {tag} is the last key of {zone} the parent's DS can name: add its successor first (edgewise-dns key roll)"
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
fn generate(
    zone: &Name,
    algorithm: DnssecAlgorithm,
    flags: u16,
    times: KeyTimes,
) -> Result<(SigningKey, Vec<u8>), KeyError> {
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
    let key = key_of(algorithm, flags, &private, public.as_deref()).map_err(|_| failed())?;
    Ok((SigningKey { times, ..key }, private))
}

/// The private scalar in ring's PKCS#8 document of a P-256 key: the 32-byte OCTET STRING
/// after the version of the ECPrivateKey (RFC 5915) it wraps.
fn p256_scalar(pkcs8: &[u8]) -> Option<&[u8]> {
    const MARK: [u8; 5] = [0x02, 0x01, 0x01, 0x04, 0x20];
    let at = pkcs8.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    pkcs8.get(at..at + 32)
}

/// The key pair of `private` (scalar or seed) with `flags`, checked against `public` when
/// the `.key` file gave one; no times yet.
fn key_of(
    algorithm: DnssecAlgorithm,
    flags: u16,
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
    let rdata = dnskey_rdata(flags, algorithm, &own_public);
    Ok(SigningKey {
        algorithm,
        flags,
        tag: key_tag(&rdata),
        public: own_public,
        pair,
        times: KeyTimes::default(),
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
    // An Ed25519 key without its `.key` file: its public half follows from the seed, and
    // it is a CSK, as this server first made every key.
    let public = read_public(&public_path, algorithm)?.unwrap_or(PublicPart {
        flags: KSK_FLAGS,
        public: None,
        times: KeyTimes::default(),
    });
    if ![KSK_FLAGS, ZSK_FLAGS].contains(&public.flags) {
        return Err(malformed(
            &public_path,
            format!(
                "flags {}: only a KSK or CSK ({KSK_FLAGS}) and a ZSK ({ZSK_FLAGS}) are used",
                public.flags
            ),
        ));
    }
    let key = key_of(algorithm, public.flags, &private, public.public.as_deref())
        .map_err(|m| malformed(path, m))?;
    let named = (path.file_stem().and_then(|stem| stem.to_str()))
        .and_then(|stem| stem.rsplit('+').next())
        .and_then(|tag| tag.parse::<u16>().ok());
    if named != Some(key.tag) {
        return Err(malformed(
            path,
            format!(
                "the file names key tag {named:?}, but the key's tag is {}",
                key.tag
            ),
        ));
    }
    Ok(SigningKey {
        times: public.times,
        ..key
    })
}

/// What a `.key` file says: the DNSKEY record's flags and public key, and the times in its
/// comments.
struct PublicPart {
    flags: u16,
    public: Option<Vec<u8>>,
    times: KeyTimes,
}

/// The `.key` file at `path`; None when there is no such file (an Ed25519 key's public
/// half follows from its seed).
fn read_public(path: &Path, algorithm: DnssecAlgorithm) -> Result<Option<PublicPart>, KeyError> {
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
    let malformed = |message: String| KeyError::Malformed {
        path: path.to_path_buf(),
        message,
    };
    let times = KeyTimes::from_key_file(&text).map_err(malformed)?;
    for (n, line) in text.lines().enumerate() {
        let line = line.split(';').next().unwrap_or_default();
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| w.eq_ignore_ascii_case("DNSKEY")) else {
            continue;
        };
        let at_line = |message: &str| malformed(format!("line {}: {message}", n + 1));
        let fields = &words[at + 1..];
        if fields.len() < 4 {
            return Err(at_line(
                "a DNSKEY record needs flags, protocol, algorithm and key",
            ));
        }
        let flags: u16 = fields[0]
            .parse()
            .map_err(|_| at_line("flags are not a number"))?;
        if fields[2] != algorithm.number().to_string() {
            return Err(at_line("the DNSKEY is of another algorithm"));
        }
        let public = BASE64
            .decode(fields[3..].concat())
            .map_err(|_| at_line("the public key is not base64"))?;
        return Ok(Some(PublicPart {
            flags,
            public: Some(public),
            times,
        }));
    }
    Err(malformed("line 0: no DNSKEY record".into()))
}

/// The `.key` file of `key` with `times`, as BIND writes it: what the key is, its times,
/// its DNSKEY record.
fn key_file(zone: &Name, key: &SigningKey, times: KeyTimes) -> String {
    let what = if key.is_ksk() {
        "key-signing"
    } else {
        "zone-signing"
    };
    format!(
        "; This is a {what} key, keyid {}, for {}\n{}{}\n",
        key.tag,
        absolute(zone),
        times.key_comments(),
        key.dnskey_text(zone)
    )
}

/// Writes `content` to `path` through a temporary file renamed over it, with `mode`, and
/// syncs the folder.
fn write_file(path: &Path, content: &str, mode: u32) -> Result<(), KeyError> {
    replace_file_with_mode(path, content.as_bytes(), mode)
        .and_then(|_| sync_parent(path))
        .map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })
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

#[cfg(test)]
mod tests;
