//! The one canonical form of a request path. It is made once, at the edge, before routing;
//! behavior matching, cache keys, signed-URL resources, invalidation and every origin (folder
//! or HTTP) then read only this form, so no two parts of the pipeline can disagree on which
//! resource a request names.
//!
//! # The form (RFC 3986 §6.2.2, made stricter where a folder could not tell two spellings apart)
//! - Percent-escapes are decoded when the byte is one a path may carry as it is: unreserved
//!   characters (`A-Z a-z 0-9 - . _ ~`), sub-delims (`! $ & ' ( ) * + , ; =`), `:` `@`, and `"`
//!   (allowed in behavior patterns). RFC 3986 keeps escaped sub-delims distinct, but a folder
//!   origin reads `%24` and `$` as the same file, so keeping them apart would let one spelling
//!   slip past a pattern the other matches.
//! - Every other byte, raw or escaped (space, `%`, `?`, `#`, non-ASCII, ...), is written as an
//!   escape with upper-case hex digits.
//! - An escaped `/`, `\` or NUL is refused, as CloudFront and nginx do: it would be a separator
//!   to one reader and part of a name to another. A raw `\` is refused for the same reason.
//! - The decoded bytes must be UTF-8 (overlong and other invalid sequences are refused).
//! - Empty segments are merged (`//a` is `/a`, like nginx's `merge_slashes`), `.` segments
//!   removed, and `..` removes the segment before it (RFC 3986 §5.2.4). A `..` that would climb
//!   above the root is refused, as nginx does, rather than silently clamped.
//! - A trailing slash is kept (a folder serves its index there), also after a final `.`/`..`.
//! - Spellings that some origin would read as another path are refused outright, as Spring
//!   Security's strict firewall does: a `;` (Tomcat and Spring drop `;parameters` from a
//!   segment, so `/private;x/a` would be `/private/a` to them), a name ending in a dot or a
//!   space (Windows drops those, so `/private./a` would be `/private/a`), and a double-encoded
//!   escape (`%252e`: an origin that decodes once more reads `.`).
//!
//! Anything refused is a 400 before any behavior is chosen.

use std::borrow::Cow;
use std::fmt;

use percent_encoding::percent_decode_str;

/// A request path in canonical form: starts with `/`, no dot or empty segments, escapes only
/// where they are needed, upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestPath(String);

/// Why a path was refused (each is a 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not origin-form: no leading `/` (e.g. `*`).
    #[error("the request path does not start with '/'")]
    NotAbsolute,
    /// `%` not followed by two hex digits.
    #[error("the request path has a malformed percent-escape")]
    BadEscape,
    /// `%2F`, `%5C` or `%00`: a separator or NUL hidden in a name.
    #[error("the request path has an encoded '/', '\\' or NUL")]
    EncodedSeparator,
    /// A raw backslash: a separator on some platforms, never part of a name here.
    #[error("the request path has a backslash")]
    Backslash,
    /// Decoded bytes that are not UTF-8.
    #[error("the request path is not UTF-8")]
    NotUtf8,
    /// A `..` segment above the root.
    #[error("the request path climbs above the root")]
    AboveRoot,
    /// A `;`: segment parameters, dropped by some origins and kept by others.
    #[error("the request path has a ';' (a segment parameter some origins drop)")]
    SegmentParameter,
    /// A name ending in `.` or a space, which some file systems drop.
    #[error("a name in the request path ends in a dot or a space")]
    TrailingDot,
    /// `%25` followed by two hex digits: another path to an origin that decodes again.
    #[error("the request path has a double-encoded escape (%25 and two hex digits)")]
    DoubleEncoded,
}

/// Bytes the canonical form carries as they are.
fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'"'
        )
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl RequestPath {
    /// Canonicalizes `raw`, a request URI's path exactly as received.
    pub fn parse(raw: &str) -> Result<RequestPath, PathError> {
        if !raw.starts_with('/') {
            return Err(PathError::NotAbsolute);
        }
        if is_canonical(raw) {
            return Ok(RequestPath(raw.to_owned()));
        }
        let decoded = decode(raw)?;
        let text = std::str::from_utf8(&decoded).map_err(|_| PathError::NotUtf8)?;
        let mut segments: Vec<&str> = Vec::new();
        let mut trailing_slash = false;
        for segment in text.split('/').skip(1) {
            trailing_slash = true;
            match segment {
                "" | "." => {}
                ".." => {
                    segments.pop().ok_or(PathError::AboveRoot)?;
                }
                name if name.contains(';') => return Err(PathError::SegmentParameter),
                name if name.ends_with(['.', ' ']) => return Err(PathError::TrailingDot),
                name => {
                    segments.push(name);
                    trailing_slash = false;
                }
            }
        }
        let mut canonical = String::with_capacity(raw.len());
        for name in &segments {
            canonical.push('/');
            encode_into(name, &mut canonical);
        }
        if trailing_slash || segments.is_empty() {
            canonical.push('/');
        }
        Ok(RequestPath(canonical))
    }

    /// The canonical text, as behaviors match it and HTTP origins receive it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The decoded segment names, as a folder reads them (never empty, `.` or `..`).
    pub fn names(&self) -> impl Iterator<Item = Cow<'_, str>> {
        self.0
            .split('/')
            .filter(|name| !name.is_empty())
            .map(|name| percent_decode_str(name).decode_utf8_lossy())
    }

    /// Whether the path ends with `/` (a folder's index is asked for).
    pub fn ends_with_slash(&self) -> bool {
        self.0.ends_with('/')
    }
}

impl fmt::Display for RequestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The common case, checked without allocating: plain bytes only, no empty or dot segments.
fn is_canonical(raw: &str) -> bool {
    raw.bytes().all(|b| (b == b'/' || is_plain(b)) && b != b';')
        && !raw.contains("//")
        && !raw.split('/').any(|segment| segment.ends_with('.'))
}

/// Decodes every escape, refusing those that would hide a separator or NUL.
fn decode(raw: &str) -> Result<Vec<u8>, PathError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = match bytes[i] {
            b'%' => {
                let high = bytes.get(i + 1).copied().and_then(hex_value);
                let low = bytes.get(i + 2).copied().and_then(hex_value);
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(PathError::BadEscape);
                };
                i += 3;
                match high << 4 | low {
                    b'/' | b'\\' | 0 => return Err(PathError::EncodedSeparator),
                    b'%' if bytes.get(i..i + 2).is_some_and(|next| {
                        next.iter().all(|&digit| hex_value(digit).is_some())
                    }) =>
                    {
                        return Err(PathError::DoubleEncoded);
                    }
                    decoded => decoded,
                }
            }
            b'\\' => return Err(PathError::Backslash),
            raw => {
                i += 1;
                raw
            }
        };
        out.push(byte);
    }
    Ok(out)
}

/// Writes one decoded segment name, escaping what may not stand as it is.
fn encode_into(name: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in name.as_bytes() {
        if is_plain(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xF)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(raw: &str) -> Result<String, PathError> {
        RequestPath::parse(raw).map(|p| p.0)
    }

    #[test]
    fn spellings_of_one_path_meet() {
        for raw in [
            "/private/secret.txt",
            "//private/secret.txt",
            "/%70rivate/secret.txt",
            "/%70riv%61te/secret.txt",
            "/./private/secret.txt",
            "/%2e/private/secret.txt",
            "/%2E/private/./secret.txt",
            "/public/../private/secret.txt",
            "/public/%2e%2e/private//secret.txt",
            "/private/secret%2Etxt",
            "///private///secret.txt",
        ] {
            assert_eq!(
                canonical(raw).as_deref(),
                Ok("/private/secret.txt"),
                "{raw}"
            );
        }
    }

    #[test]
    fn what_stays_escaped_is_upper_case() {
        let table = [
            ("/a%20b", "/a%20b"),
            ("/a%2ab", "/a*b"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/café", "/caf%C3%A9"),
            ("/100%25-cotton", "/100%25-cotton"),
            ("/a%3Fb%23c", "/a%3Fb%23c"),
            ("/p%24/%3D", "/p$/="),
            ("/{x}", "/%7Bx%7D"),
            ("/", "/"),
            ("/a/", "/a/"),
            ("/a/.", "/a/"),
            ("/a/b/..", "/a/"),
            ("/a/..", "/"),
            ("/.x/a.b", "/.x/a.b"),
        ];
        for (raw, expected) in table {
            assert_eq!(canonical(raw).as_deref(), Ok(expected), "{raw}");
            // Canonical is a fixed point.
            assert_eq!(canonical(expected).as_deref(), Ok(expected), "{expected}");
        }
    }

    #[test]
    fn refusals() {
        use PathError::*;
        let table = [
            ("*", NotAbsolute),
            ("private", NotAbsolute),
            ("/%2fprivate/x", EncodedSeparator),
            ("/private%2Fsecret.txt", EncodedSeparator),
            ("/a%5cb", EncodedSeparator),
            ("/a%00b", EncodedSeparator),
            ("/a\\b", Backslash),
            ("/%", BadEscape),
            ("/%2", BadEscape),
            ("/%zz", BadEscape),
            ("/%c0%ae%c0%ae/x", NotUtf8),
            ("/%ff", NotUtf8),
            ("/..", AboveRoot),
            ("/../private/x", AboveRoot),
            ("/a/../../x", AboveRoot),
            ("/%2e%2e/x", AboveRoot),
            ("/private;x/a", SegmentParameter),
            ("/a/b;jsessionid=1", SegmentParameter),
            ("/private%3bx/a", SegmentParameter),
            ("/private./a", TrailingDot),
            ("/private../a", TrailingDot),
            ("/...", TrailingDot),
            ("/a/b.", TrailingDot),
            ("/private%20/a", TrailingDot),
            ("/%252e/private/a", DoubleEncoded),
            ("/a%252fb", DoubleEncoded),
        ];
        for (raw, error) in table {
            assert_eq!(canonical(raw), Err(error), "{raw}");
        }
    }

    #[test]
    fn names_are_what_a_folder_reads() {
        let path = RequestPath::parse("/a%20b/%25/caf%C3%A9/").unwrap();
        let names: Vec<_> = path.names().collect();
        assert_eq!(names, ["a b", "%", "café"]);
        assert!(path.ends_with_slash());
    }
}
