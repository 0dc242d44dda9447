//! Shard iterators and list-paging NextTokens: state handed to clients and taken back, so
//! it is sealed with an HMAC they cannot forge, and it expires after 5 minutes as on AWS.
//!
//! A token is URL-safe base64 (no padding) of `kind ‖ issued_ms ‖ fields ‖ MAC`, the MAC
//! being HMAC-SHA256 over everything before it, truncated to 16 bytes. The kind byte keeps a
//! NextToken from passing as an iterator. The key lives in a file, so iterators survive a
//! restart.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use subtle::ConstantTimeEq;

use super::error::{ErrorCode, KinesisError};
use super::sigv4::hmac_sha256;

/// How long iterators and NextTokens stay valid: AWS's 300 000 ms.
pub const TOKEN_LIFETIME_MS: u64 = 300_000;
/// AWS's bound on a ShardIterator's length; longer text is refused before decoding.
pub const MAX_TOKEN_CHARS: usize = 512;
const KEY_LEN: usize = 32;
const MAC_LEN: usize = 16;
const KIND_ITERATOR: u8 = 1;
const KIND_NEXT_TOKEN: u8 = 2;

/// The secret that seals tokens.
pub struct IteratorKey([u8; KEY_LEN]);

impl std::fmt::Debug for IteratorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IteratorKey(<redacted>)")
    }
}

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot {action} iterator key {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "iterator key {} holds {len} bytes, not {KEY_LEN}; remove it to have a new one made \
         (iterators already handed out then become invalid)",
        path.display()
    )]
    Length { path: PathBuf, len: usize },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> KeyFileError {
    let path = path.to_owned();
    move |source| KeyFileError::Io {
        action,
        path,
        source,
    }
}

impl IteratorKey {
    /// A key kept elsewhere (a stream cluster shares one among its processes).
    pub fn from_bytes(key: [u8; KEY_LEN]) -> Self {
        Self(key)
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        Self(key)
    }

    /// Reads the key at `path`, or creates it there: 32 random bytes, mode 0600, written to
    /// a temporary file, synced and renamed into place so a crash leaves no partial key.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyFileError> {
        match fs::read(path) {
            Ok(bytes) => <[u8; KEY_LEN]>::try_from(bytes.as_slice())
                .map(Self)
                .map_err(|_| KeyFileError::Length {
                    path: path.to_owned(),
                    len: bytes.len(),
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(io_error("read", path)(e)),
        }
    }

    fn create(path: &Path) -> Result<Self, KeyFileError> {
        let key = Self::generate();
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp_name);
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_error("remove stale", &tmp)(e));
            }
            _ => {}
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(io_error("create", &tmp))?;
        file.write_all(&key.0)
            .and_then(|()| file.sync_all())
            .map_err(io_error("write", &tmp))?;
        fs::rename(&tmp, path).map_err(io_error("rename into place", path))?;
        // The rename is durable only once the directory is synced; directories cannot be
        // opened for syncing everywhere, hence unix only.
        #[cfg(unix)]
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_error("sync the folder of", path))?;
        }
        Ok(key)
    }

    fn mac(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let full = hmac_sha256(&self.0, payload);
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&full[..MAC_LEN]);
        mac
    }

    fn seal(&self, mut payload: Vec<u8>) -> String {
        let mac = self.mac(&payload);
        payload.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// The sealed fields after `kind` and the issue time, if `text` is intact and of `kind`.
    fn open(&self, kind: u8, text: &str) -> Option<(u64, Vec<u8>)> {
        if text.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let mut raw = URL_SAFE_NO_PAD.decode(text).ok()?;
        let body_len = raw.len().checked_sub(MAC_LEN)?;
        let mac = raw.split_off(body_len);
        if !bool::from(self.mac(&raw).ct_eq(&mac)) {
            return None;
        }
        let (&found, rest) = raw.split_first()?;
        let (issued, rest) = take_u64(rest)?;
        (found == kind).then(|| (issued, rest.to_vec()))
    }
}

fn header(kind: u8, issued_ms: u64) -> Vec<u8> {
    let mut payload = Vec::with_capacity(64);
    payload.push(kind);
    payload.extend_from_slice(&issued_ms.to_be_bytes());
    payload
}

fn take_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*head), rest))
}

fn take_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head), rest))
}

/// The IMF-fixdate of an epoch-millisecond time, clamped to the dates httpdate can show.
fn show_time(ms: u64) -> String {
    const LAST_SHOWABLE_SECS: u64 = 253_402_300_799;
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs((ms / 1000).min(LAST_SHOWABLE_SECS)))
}

/// `Err` with AWS's wording once a token is older than [`TOKEN_LIFETIME_MS`]; a token from
/// the future (our clock stepped back) is still good.
fn check_age(
    (what, noun): (&str, &str),
    code: ErrorCode,
    issued_ms: u64,
    now_ms: u64,
) -> Result<(), KinesisError> {
    if now_ms.saturating_sub(issued_ms) <= TOKEN_LIFETIME_MS {
        return Ok(());
    }
    Err(KinesisError::new(
        code,
        format!(
            "{what} expired. The {noun} was created at time {} while right now it is {} which is further in the future than the tolerated delay of {TOKEN_LIFETIME_MS} milliseconds.",
            show_time(issued_ms),
            show_time(now_ms)
        ),
    ))
}

/// A position in a shard, as GetShardIterator hands it out and GetRecords takes it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIterator {
    pub stream: String,
    /// Tells a stream from an earlier one of the same name.
    pub stream_created_ms: u64,
    pub shard: u32,
    /// Where the next read starts, in the log's terms.
    pub offset: u64,
    pub issued_ms: u64,
}

impl ShardIterator {
    /// The opaque text for clients. With stream names of at most 128 bytes it is at most 231
    /// characters, inside AWS's 512.
    pub fn seal(&self, key: &IteratorKey) -> String {
        let mut payload = header(KIND_ITERATOR, self.issued_ms);
        payload.extend_from_slice(&self.stream_created_ms.to_be_bytes());
        payload.extend_from_slice(&self.shard.to_be_bytes());
        payload.extend_from_slice(&self.offset.to_be_bytes());
        payload.extend_from_slice(self.stream.as_bytes());
        key.seal(payload)
    }

    /// Reads back an iterator this server sealed: InvalidArgumentException if it was not, or
    /// was altered; ExpiredIteratorException once it is older than 300 000 ms.
    pub fn open(key: &IteratorKey, text: &str, now_ms: u64) -> Result<Self, KinesisError> {
        let iterator = Self::unseal(key, text).ok_or_else(|| {
            KinesisError::new(ErrorCode::InvalidArgument, "Invalid ShardIterator.")
        })?;
        check_age(
            ("Iterator", "iterator"),
            ErrorCode::ExpiredIterator,
            iterator.issued_ms,
            now_ms,
        )?;
        Ok(iterator)
    }

    fn unseal(key: &IteratorKey, text: &str) -> Option<Self> {
        let (issued_ms, fields) = key.open(KIND_ITERATOR, text)?;
        let (stream_created_ms, rest) = take_u64(&fields)?;
        let (shard, rest) = take_u32(rest)?;
        let (offset, rest) = take_u64(rest)?;
        let stream = String::from_utf8(rest.to_vec()).ok()?;
        Some(Self {
            stream,
            stream_created_ms,
            shard,
            offset,
            issued_ms,
        })
    }
}

/// Where ListStreams or ListShards resumes: `cursor` is the operation's own encoding of its
/// position (e.g. the stream and the last shard id returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextToken {
    pub cursor: String,
    pub issued_ms: u64,
}

impl NextToken {
    pub fn seal(&self, key: &IteratorKey) -> String {
        let mut payload = header(KIND_NEXT_TOKEN, self.issued_ms);
        payload.extend_from_slice(self.cursor.as_bytes());
        key.seal(payload)
    }

    /// InvalidArgumentException for a token this server did not seal or that was altered;
    /// ExpiredNextTokenException once it is older than 300 000 ms.
    pub fn open(key: &IteratorKey, text: &str, now_ms: u64) -> Result<Self, KinesisError> {
        let token = key
            .open(KIND_NEXT_TOKEN, text)
            .and_then(|(issued_ms, cursor)| {
                Some(Self {
                    cursor: String::from_utf8(cursor).ok()?,
                    issued_ms,
                })
            })
            .ok_or_else(|| KinesisError::new(ErrorCode::InvalidArgument, "Invalid NextToken."))?;
        check_age(
            ("NextToken", "token"),
            ErrorCode::ExpiredNextToken,
            token.issued_ms,
            now_ms,
        )?;
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_795_594_587_097;

    fn iterator(stream: &str) -> ShardIterator {
        ShardIterator {
            stream: stream.to_owned(),
            stream_created_ms: 1_764_028_800_000,
            shard: 3,
            offset: 987_654_321,
            issued_ms: T0,
        }
    }

    fn code(result: Result<impl std::fmt::Debug, KinesisError>) -> ErrorCode {
        result.unwrap_err().code
    }

    #[test]
    fn iterator_round_trip() {
        let key = IteratorKey::generate();
        let it = iterator("logs");
        let text = it.seal(&key);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(ShardIterator::open(&key, &text, T0).unwrap(), it);
        // Reusable: opening twice gives the same position.
        assert_eq!(ShardIterator::open(&key, &text, T0 + 1).unwrap(), it);
    }

    #[test]
    fn longest_stream_name_fits() {
        let key = IteratorKey::generate();
        let it = iterator(&"s".repeat(128));
        let text = it.seal(&key);
        assert_eq!(text.len(), 231);
        assert!(text.len() <= MAX_TOKEN_CHARS);
        assert_eq!(ShardIterator::open(&key, &text, T0).unwrap(), it);
    }

    #[test]
    fn any_altered_byte_is_invalid() {
        let key = IteratorKey::generate();
        let raw = URL_SAFE_NO_PAD.decode(iterator("logs").seal(&key)).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            let err = ShardIterator::open(&key, &URL_SAFE_NO_PAD.encode(&bad), T0).unwrap_err();
            assert_eq!(
                err,
                KinesisError::new(ErrorCode::InvalidArgument, "Invalid ShardIterator."),
                "byte {i}"
            );
        }
    }

    #[test]
    fn garbage_is_invalid() {
        let key = IteratorKey::generate();
        let good = iterator("logs").seal(&key);
        for text in [
            String::new(),
            "not base64 !".to_owned(),
            "AAAA".to_owned(),
            good[..good.len() - 4].to_owned(),
            format!("{good}AA"),
            "A".repeat(MAX_TOKEN_CHARS + 1),
        ] {
            assert_eq!(
                code(ShardIterator::open(&key, &text, T0)),
                ErrorCode::InvalidArgument,
                "{text}"
            );
        }
    }

    #[test]
    fn other_keys_are_rejected() {
        let text = iterator("logs").seal(&IteratorKey::generate());
        assert_eq!(
            code(ShardIterator::open(&IteratorKey::generate(), &text, T0)),
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn expiry_boundary() {
        let key = IteratorKey::generate();
        let text = iterator("logs").seal(&key);
        assert!(ShardIterator::open(&key, &text, T0 + TOKEN_LIFETIME_MS).is_ok());
        // Issued in the future (clock stepped back): still fine.
        assert!(ShardIterator::open(&key, &text, T0 - 60_000).is_ok());
        let err = ShardIterator::open(&key, &text, T0 + TOKEN_LIFETIME_MS + 1).unwrap_err();
        assert_eq!(err.code, ErrorCode::ExpiredIterator);
        assert_eq!(
            err.message,
            "Iterator expired. The iterator was created at time Wed, 25 Nov 2026 08:16:27 GMT while right now it is Wed, 25 Nov 2026 08:21:27 GMT which is further in the future than the tolerated delay of 300000 milliseconds."
        );
    }

    #[test]
    fn next_tokens() {
        let key = IteratorKey::generate();
        let token = NextToken {
            cursor: "logs\nshardId-000000000007".to_owned(),
            issued_ms: T0,
        };
        let text = token.seal(&key);
        assert_eq!(
            NextToken::open(&key, &text, T0 + TOKEN_LIFETIME_MS).unwrap(),
            token
        );
        let err = NextToken::open(&key, &text, T0 + TOKEN_LIFETIME_MS + 1).unwrap_err();
        assert_eq!(err.code, ErrorCode::ExpiredNextToken);
        assert!(
            err.message
                .starts_with("NextToken expired. The token was created at time"),
            "{}",
            err.message
        );
        assert_eq!(
            code(NextToken::open(&IteratorKey::generate(), &text, T0)),
            ErrorCode::InvalidArgument
        );
        // The kinds do not mix.
        assert_eq!(
            code(ShardIterator::open(&key, &text, T0)),
            ErrorCode::InvalidArgument
        );
        let it = iterator("logs").seal(&key);
        assert_eq!(
            code(NextToken::open(&key, &it, T0)),
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iterator.key");
        let first = IteratorKey::load_or_create(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), first.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        let text = iterator("logs").seal(&first);
        let again = IteratorKey::load_or_create(&path).unwrap();
        assert!(ShardIterator::open(&again, &text, T0).is_ok());
        assert_eq!(format!("{again:?}"), "IteratorKey(<redacted>)");
    }

    #[test]
    fn key_file_errors_say_what_and_where() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short.key");
        fs::write(&short, b"abc").unwrap();
        let err = IteratorKey::load_or_create(&short).unwrap_err().to_string();
        assert!(err.contains("short.key holds 3 bytes, not 32"), "{err}");
        let missing_dir = dir.path().join("nope").join("iterator.key");
        let err = IteratorKey::load_or_create(&missing_dir)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot create iterator key"), "{err}");
    }
}
