//! A local folder served as an origin, the way an S3 bucket sits behind CloudFront.
//!
//! # Path rules
//! The folder reads the canonical [`RequestPath`] the behavior was matched on, never the
//! path as received: its segment names (decoded once; no empty, `.` or `..` segment, no
//! separator or NUL inside a name) are the file names, so the file served is always the one
//! the matcher meant. As a second guard, a name the platform would not treat as one plain
//! file name (on Windows any `:`) is refused with **400 Bad Request**. The names are joined
//! onto the canonical root and canonicalized; a result outside the root (a symlink pointing
//! out) is **404**, while symlinks that stay inside the root are followed. A directory
//! serves its `index.html` (with or without a trailing slash), never a listing; a trailing
//! slash on a file is 404.
//! Missing → 404, permission denied → 403, other filesystem failures → 500; error bodies
//! are fixed short texts that never mention paths or OS errors. Only regular files are
//! served (no FIFOs or devices).
//!
//! # Responses
//! GET and HEAD (anything else → 405 with `Allow`). Validators are a strong ETag
//! `"<hex len>-<hex mtime nanos>"` and `Last-Modified`. Conditionals follow RFC 9110 §13:
//! `If-None-Match` (weak comparison) wins over `If-Modified-Since`; both answer 304.
//! A single byte range (RFC 9110 §14) on GET answers 206, an unsatisfiable one 416; several
//! ranges or a malformed header are ignored (200 with the whole file), as is a Range whose
//! `If-Range` does not match. HEAD ignores `Range` (RFC 9110 §14.2: ranges are defined for
//! GET only). Bodies stream from the opened file.

use std::io::{self, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_stream::StreamExt;
use tokio_util::io::ReaderStream;

use crate::cdn::body::{self, Body, BodyError};
use crate::cdn::request_path::RequestPath;

/// The file a directory request serves.
const INDEX: &str = "index.html";
/// Read size for streamed bodies.
const CHUNK: usize = 64 * 1024;
/// 10000-01-01T00:00:00Z: `httpdate` cannot format this or later.
const MAX_HTTP_DATE_SECS: u64 = 253_402_300_800;

/// A folder served as an origin.
#[derive(Debug, Clone)]
pub struct DirOrigin {
    /// Canonical (absolute, symlink-free) root; every served file must lie under it.
    root: PathBuf,
}

impl DirOrigin {
    /// `root` must exist and be a directory; it is canonicalized once.
    pub fn new(root: &Path) -> io::Result<DirOrigin> {
        let root = std::fs::canonicalize(root)?;
        if !std::fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "origin root is not a directory",
            ));
        }
        Ok(DirOrigin { root })
    }

    /// Answers one request for the canonical `path`.
    pub async fn fetch(
        &self,
        method: &Method,
        path: &RequestPath,
        headers: &HeaderMap,
    ) -> Response<Body> {
        let head = if method == Method::GET {
            false
        } else if method == Method::HEAD {
            true
        } else {
            let mut resp = error(StatusCode::METHOD_NOT_ALLOWED);
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return resp;
        };
        match self.serve(head, path, headers).await {
            Ok(resp) => resp,
            Err(status) => error(status),
        }
    }

    async fn serve(
        &self,
        head: bool,
        path: &RequestPath,
        headers: &HeaderMap,
    ) -> Result<Response<Body>, StatusCode> {
        let rel = relative_file(path)?;
        let wants_dir = path.ends_with_slash();
        let file_path = self.locate(rel, wants_dir).await?;
        let mut file = File::open(&file_path).await.map_err(io_status)?;
        let meta = file.metadata().await.map_err(io_status)?;
        if !meta.is_file() {
            return Err(StatusCode::NOT_FOUND);
        }
        let len = meta.len();
        let v = Validators::new(len, meta.modified().ok());

        if not_modified(headers, &v) {
            let mut resp = Response::new(body::empty());
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            v.insert(resp.headers_mut());
            return Ok(resp);
        }

        let plan = if head {
            Plan::Full
        } else {
            range_plan(headers, len, &v)
        };
        let (status, start, count) = match plan {
            Plan::Full => (StatusCode::OK, 0, len),
            Plan::Partial(first, last) => (StatusCode::PARTIAL_CONTENT, first, last - first + 1),
            Plan::Unsatisfiable => {
                let mut resp = error(StatusCode::RANGE_NOT_SATISFIABLE);
                let h = resp.headers_mut();
                set(h, header::CONTENT_RANGE, format!("bytes */{len}"));
                h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                return Ok(resp);
            }
        };

        let body = if head || count == 0 {
            body::empty()
        } else {
            if start > 0 {
                file.seek(SeekFrom::Start(start)).await.map_err(io_status)?;
            }
            let frames = ReaderStream::with_capacity(file.take(count), CHUNK)
                .map(|chunk| chunk.map(Frame::data).map_err(|e| Box::new(e) as BodyError));
            StreamBody::new(frames).boxed()
        };

        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        set(h, header::CONTENT_TYPE, content_type(&file_path));
        set(h, header::CONTENT_LENGTH, count.to_string());
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if status == StatusCode::PARTIAL_CONTENT {
            let last = start + count - 1;
            set(
                h,
                header::CONTENT_RANGE,
                format!("bytes {start}-{last}/{len}"),
            );
        }
        v.insert(h);
        Ok(resp)
    }

    /// The regular file a sanitized relative path names: canonicalized, inside the root,
    /// a directory replaced by its index.
    async fn locate(&self, rel: PathBuf, wants_dir: bool) -> Result<PathBuf, StatusCode> {
        let target = self.contained(&self.root.join(rel)).await?;
        let meta = tokio::fs::metadata(&target).await.map_err(io_status)?;
        if meta.is_dir() {
            // index.html may itself be a symlink: check it the same way.
            let index = self.contained(&target.join(INDEX)).await?;
            let meta = tokio::fs::metadata(&index).await.map_err(io_status)?;
            return if meta.is_file() {
                Ok(index)
            } else {
                Err(StatusCode::NOT_FOUND)
            };
        }
        if meta.is_file() && !wants_dir {
            Ok(target)
        } else {
            Err(StatusCode::NOT_FOUND)
        }
    }

    /// Canonicalizes `path` and insists it is under the root (404 otherwise).
    async fn contained(&self, path: &Path) -> Result<PathBuf, StatusCode> {
        let canon = tokio::fs::canonicalize(path).await.map_err(io_status)?;
        if canon.starts_with(&self.root) {
            Ok(canon)
        } else {
            Err(StatusCode::NOT_FOUND)
        }
    }
}

/// The file path below the root that `path` names. Every name must be one plain file name to
/// the platform, so `join` can only ever descend.
fn relative_file(path: &RequestPath) -> Result<PathBuf, StatusCode> {
    let mut rel = PathBuf::new();
    for name in path.names() {
        if cfg!(windows) && name.contains(':') {
            return Err(StatusCode::BAD_REQUEST);
        }
        let mut parts = Path::new(name.as_ref()).components();
        match (parts.next(), parts.next()) {
            (Some(Component::Normal(plain)), None) if plain.to_str() == Some(&name) => {
                rel.push(plain);
            }
            _ => return Err(StatusCode::BAD_REQUEST),
        }
    }
    Ok(rel)
}

fn io_status(e: io::Error) -> StatusCode {
    use io::ErrorKind::{InvalidFilename, InvalidInput, NotADirectory, NotFound, PermissionDenied};
    match e.kind() {
        NotFound | NotADirectory | InvalidFilename | InvalidInput => StatusCode::NOT_FOUND,
        PermissionDenied => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A short plain-text error response that says nothing but the status.
fn error(status: StatusCode) -> Response<Body> {
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let len = text.len();
    let mut resp = Response::new(body::full(text));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    set(h, header::CONTENT_LENGTH, len.to_string());
    resp
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: String) {
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(name, value);
    }
}

fn content_type(path: &Path) -> String {
    match mime_guess::from_path(path).first() {
        Some(mime) if mime.type_() == mime_guess::mime::TEXT => {
            format!("{}; charset=utf-8", mime.essence_str())
        }
        Some(mime) => mime.essence_str().to_owned(),
        None => "application/octet-stream".to_owned(),
    }
}

/// A file's validators.
struct Validators {
    /// Strong entity tag, quotes included.
    etag: String,
    /// Modification time truncated to whole seconds; `None` when unknown or not
    /// representable as an HTTP-date.
    modified: Option<SystemTime>,
}

impl Validators {
    fn new(len: u64, mtime: Option<SystemTime>) -> Validators {
        let since_epoch = mtime.and_then(|t| t.duration_since(UNIX_EPOCH).ok());
        let nanos = since_epoch.map_or(0, |d| d.as_nanos());
        let modified = since_epoch
            .map(|d| d.as_secs())
            .filter(|&secs| secs < MAX_HTTP_DATE_SECS)
            .map(|secs| UNIX_EPOCH + Duration::from_secs(secs));
        Validators {
            etag: format!("\"{len:x}-{nanos:x}\""),
            modified,
        }
    }

    fn insert(&self, headers: &mut HeaderMap) {
        set(headers, header::ETAG, self.etag.clone());
        if let Some(modified) = self.modified {
            set(
                headers,
                header::LAST_MODIFIED,
                httpdate::fmt_http_date(modified),
            );
        }
    }

    /// RFC 9110 §13.1.5: a date validator matches only if exactly equal.
    fn same_date(&self, value: &HeaderValue) -> bool {
        let date = value
            .to_str()
            .ok()
            .and_then(|s| httpdate::parse_http_date(s).ok());
        date.is_some() && date == self.modified
    }
}

/// RFC 9110 §13.2.2 steps 3 and 4 for GET/HEAD: true means answer 304.
fn not_modified(headers: &HeaderMap, v: &Validators) -> bool {
    let mut inm = headers.get_all(header::IF_NONE_MATCH).iter().peekable();
    if inm.peek().is_some() {
        return inm.any(|value| {
            value
                .to_str()
                .is_ok_and(|list| etag_list_matches(list, &v.etag))
        });
    }
    match (v.modified, headers.get(header::IF_MODIFIED_SINCE)) {
        (Some(modified), Some(since)) => since
            .to_str()
            .ok()
            .and_then(|s| httpdate::parse_http_date(s).ok())
            .is_some_and(|since| modified <= since),
        _ => false,
    }
}

/// Whether an `If-None-Match` value (`*` or a list of entity tags) matches `ours` under
/// weak comparison. A malformed list stops matching at the first bad element.
fn etag_list_matches(list: &str, ours: &str) -> bool {
    if list.trim() == "*" {
        return true;
    }
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        if rest.is_empty() {
            return false;
        }
        let tag = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(end) = tag.strip_prefix('"').and_then(|inner| inner.find('"')) else {
            return false;
        };
        let opaque = &tag[..end + 2];
        if opaque == ours {
            return true;
        }
        rest = &tag[end + 2..];
    }
}

/// What a GET sends back.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    Full,
    /// First and last byte, inclusive, both within the file.
    Partial(u64, u64),
    Unsatisfiable,
}

/// RFC 9110 §14.2 and §13.1.5: the Range header, if any, gated by If-Range.
fn range_plan(headers: &HeaderMap, len: u64, v: &Validators) -> Plan {
    let mut ranges = headers.get_all(header::RANGE).iter();
    let (Some(range), None) = (ranges.next(), ranges.next()) else {
        return Plan::Full;
    };
    if let Some(if_range) = headers.get(header::IF_RANGE) {
        // An entity tag must match strongly (ours is strong, so a W/ tag never does);
        // anything else is read as an HTTP-date that must equal Last-Modified.
        let matches = if if_range.as_bytes().starts_with(b"\"") {
            if_range.as_bytes() == v.etag.as_bytes()
        } else {
            v.same_date(if_range)
        };
        if !matches {
            return Plan::Full;
        }
    }
    range
        .to_str()
        .ok()
        .and_then(|s| parse_range(s, len))
        .unwrap_or(Plan::Full)
}

/// One `bytes=` range against a file of `len` bytes; `None` means ignore the header.
fn parse_range(value: &str, len: u64) -> Option<Plan> {
    let (unit, set) = value.split_once('=')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = set
        .split(',')
        .map(|s| s.trim_matches([' ', '\t']))
        .filter(|s| !s.is_empty());
    let spec = specs.next()?;
    if specs.next().is_some() {
        return None; // several ranges: the whole file instead of multipart/byteranges
    }
    let (first, last) = spec.split_once('-')?;
    if first.is_empty() {
        let suffix = number(last)?;
        return Some(match (suffix, len) {
            (0, _) => Plan::Unsatisfiable,
            (_, 0) => Plan::Full, // a non-empty suffix of nothing: just send the nothing
            _ => Plan::Partial(len.saturating_sub(suffix), len - 1),
        });
    }
    let first = number(first)?;
    let last = if last.is_empty() {
        u64::MAX
    } else {
        number(last)?
    };
    if last < first {
        return None;
    }
    if first >= len {
        return Some(Plan::Unsatisfiable);
    }
    Some(Plan::Partial(first, last.min(len - 1)))
}

/// 1*DIGIT, saturating at `u64::MAX`.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
#[path = "dir_tests.rs"]
mod tests;
