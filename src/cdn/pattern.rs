//! CloudFront cache-behaviour path patterns (`images/*.jpg`, `/api/v?/*`, `*`).
//!
//! A request picks the first behaviour whose pattern matches its path, so matching runs on
//! every request and must never be a denial-of-service lever: it is a greedy glob with one
//! backtrack point, `O(pattern × path)` in the worst case and linear in practice, never the
//! exponential backtracking of a naive recursive matcher.
//!
//! Semantics follow CloudFront:
//! - `*` matches zero or more characters, `/` included (`images/*.jpg` also matches
//!   `/images/2024/a.jpg`); `?` matches exactly one character
//! - the leading `/` is optional: `images/*` and `/images/*` are the same pattern
//! - matching is case-sensitive
//! - a pattern is at most 255 characters from `A-Z a-z 0-9 _ - . * $ / ~ " ' @ : + &`
//!
//! Matching compares the bytes of the request's canonical path
//! ([`RequestPath`](crate::cdn::request_path::RequestPath)), never the path as received:
//! every spelling of one resource (`/%70rivate`, `//private`, `/./private`) is matched as the
//! one form the origins read, so no spelling can pick a different behavior than the file it
//! fetches. Bytes the canonical form keeps escaped stay escaped: a pattern `/caf?` does not
//! match `/caf%C3%A9`, whose last "character" is six bytes long.

use std::fmt;

/// Longest pattern CloudFront accepts; longer ones are configuration mistakes, not patterns.
const MAX_LEN: usize = 255;

/// A validated path pattern, ready to match request paths.
///
/// Validation happens once at configuration time so a typo is reported with the pattern
/// named, instead of silently never matching.
#[derive(Debug, Clone)]
pub struct PathPattern {
    /// The pattern exactly as configured, for logs and diagnostics.
    original: String,
    /// The pattern without its optional leading `/`; matched against paths likewise stripped,
    /// which is how `images/*` and `/images/*` come to mean the same thing.
    body: Box<[u8]>,
}

/// Why a configured path pattern was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PatternError {
    /// An empty pattern: CloudFront requires one on every non-default behaviour, and an empty
    /// one would silently match only `/`.
    #[error("path pattern is empty")]
    Empty,
    /// Longer than CloudFront's limit of 255 characters.
    #[error("path pattern {pattern:?} is {len} characters long; at most 255 are allowed")]
    TooLong {
        /// The pattern as configured.
        pattern: String,
        /// Its length in characters.
        len: usize,
    },
    /// A character outside CloudFront's allowed set, e.g. a space, `%`, `?`-query or `#`.
    #[error(
        "path pattern {pattern:?} contains {ch:?}; only A-Z a-z 0-9 _ - . * $ / ~ \" ' @ : + & are allowed"
    )]
    InvalidCharacter {
        /// The pattern as configured.
        pattern: String,
        /// The first offending character.
        ch: char,
    },
}

/// Whether `ch` may appear in a pattern; `?` is the one-character wildcard.
fn allowed(ch: char) -> bool {
    ch.is_ascii_alphanumeric()
        || matches!(
            ch,
            '_' | '-' | '.' | '*' | '?' | '$' | '/' | '~' | '"' | '\'' | '@' | ':' | '+' | '&'
        )
}

impl PathPattern {
    /// Validates `pattern` against CloudFront's rules so mistakes surface at load time.
    pub fn new(pattern: &str) -> Result<PathPattern, PatternError> {
        if pattern.is_empty() {
            return Err(PatternError::Empty);
        }
        let len = pattern.chars().count();
        if len > MAX_LEN {
            return Err(PatternError::TooLong {
                pattern: pattern.to_owned(),
                len,
            });
        }
        if let Some(ch) = pattern.chars().find(|&ch| !allowed(ch)) {
            return Err(PatternError::InvalidCharacter {
                pattern: pattern.to_owned(),
                ch,
            });
        }
        let body = pattern.strip_prefix('/').unwrap_or(pattern);
        Ok(PathPattern {
            original: pattern.to_owned(),
            body: body.as_bytes().into(),
        })
    }

    /// Whether a request path (the URI path only, starting with `/`, no query string, still
    /// percent-encoded) falls under this pattern.
    pub fn matches(&self, path: &str) -> bool {
        // Strip exactly one leading '/', mirroring what `new` did to the pattern; a path
        // without one (never produced by a well-formed request) is matched as it is.
        let path = path.strip_prefix('/').unwrap_or(path);
        glob(&self.body, path.as_bytes())
    }

    /// The pattern as configured, for logs and `X-Cache`-style diagnostics.
    pub fn as_str(&self) -> &str {
        &self.original
    }
}

impl fmt::Display for PathPattern {
    /// Shows the pattern as configured, so error messages read like the config file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// Greedy glob with a single backtrack point.
///
/// When a `*` is met, remember where it was and let it match nothing; on a later mismatch,
/// go back and let the *most recent* `*` swallow one more byte. Earlier stars never need to
/// be revisited: whatever they could absorb, the latest star can absorb too, because `*`
/// crosses every byte, `/` included. This bounds the work by pattern length × path length.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // (pattern index just after the last '*', text index that '*' currently extends to)
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                backtrack = Some((p, t));
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star_p, star_t)) => {
                    p = star_p;
                    t = star_t + 1;
                    backtrack = Some((star_p, t));
                }
                None => return false,
            },
        }
    }
    // The path is consumed; only trailing stars may remain in the pattern.
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn pattern(text: &str) -> PathPattern {
        PathPattern::new(text).unwrap()
    }

    #[test]
    fn patterns_match_as_cloudfront_documents() {
        // (pattern, path, expected)
        let cases: &[(&str, &str, bool)] = &[
            ("*", "/", true),
            ("*", "/anything/at/all.html", true),
            ("/*", "/x", true),
            ("images/*.jpg", "/images/a.jpg", true),
            ("images/*.jpg", "/images/2024/06/a.jpg", true),
            ("/images/*.jpg", "/images/a.jpg", true),
            ("images/*.jpg", "/images/a.png", false),
            ("images/*.jpg", "/images/a.jpg.png", false),
            ("images/*.jpg", "/other/images/a.jpg", false),
            ("*.jpg", "/a/b/c.jpg", true),
            ("*.jpg", "/jpg", false),
            ("/api/v?/*", "/api/v1/users", true),
            ("/api/v?/*", "/api/v10/users", false),
            ("/api/v?/*", "/api/v/users", false),
            ("a?c", "/abc", true),
            ("a?c", "/ac", false),
            ("/index.html", "/index.html", true),
            ("/index.html", "/index.htm", false),
            ("/index.html", "/index.html5", false),
            ("/Images/*", "/images/a", false),
            ("/images/*", "/Images/a", false),
            ("/", "/", true),
            ("/", "/a", false),
            ("/a*b*c", "/abc", true),
            ("/a*b*c", "/axxbyyc", true),
            ("/a*b*c", "/axxbyycd", false),
            ("/a**b", "/ab", true),
            ("/*/*", "/x/", true),
            ("/*/*", "/x", false),
            ("/~user/$file's@x:+&\"", "/~user/$file's@x:+&\"", true),
        ];
        for &(pat, path, expected) in cases {
            assert_eq!(
                pattern(pat).matches(path),
                expected,
                "pattern {pat:?} against {path:?}"
            );
        }
    }

    #[test]
    fn matching_uses_the_percent_encoded_bytes_as_received() {
        let cases: &[(&str, &str, bool)] = &[
            ("/caf?", "/caf%C3%A9", false),
            ("/caf*", "/caf%C3%A9", true),
            ("/a/b", "/a%2Fb", false),
            ("/a*", "/a%2Fb", true),
            ("/caf?", "/café", false), // raw UTF-8 é is two bytes
            ("/caf??", "/café", true),
        ];
        for &(pat, path, expected) in cases {
            assert_eq!(pattern(pat).matches(path), expected, "{pat:?} vs {path:?}");
        }
    }

    #[test]
    fn invalid_patterns_are_refused_with_the_pattern_named() {
        let long = "a".repeat(256);
        let cases: Vec<(&str, PatternError)> = vec![
            ("", PatternError::Empty),
            (
                &long,
                PatternError::TooLong {
                    pattern: long.clone(),
                    len: 256,
                },
            ),
            (
                "/images/a b.jpg",
                PatternError::InvalidCharacter {
                    pattern: "/images/a b.jpg".into(),
                    ch: ' ',
                },
            ),
            (
                "/a%20b",
                PatternError::InvalidCharacter {
                    pattern: "/a%20b".into(),
                    ch: '%',
                },
            ),
            (
                "/x#y",
                PatternError::InvalidCharacter {
                    pattern: "/x#y".into(),
                    ch: '#',
                },
            ),
            (
                "/café",
                PatternError::InvalidCharacter {
                    pattern: "/café".into(),
                    ch: 'é',
                },
            ),
        ];
        for (pat, expected) in cases {
            assert_eq!(PathPattern::new(pat).unwrap_err(), expected, "{pat:?}");
        }
    }

    #[test]
    fn a_pattern_of_exactly_255_characters_is_accepted() {
        let text = format!("/{}", "a".repeat(254));
        assert!(PathPattern::new(&text).is_ok());
    }

    #[test]
    fn error_messages_are_one_line_and_name_the_pattern() {
        let err = PathPattern::new("/a b").unwrap_err().to_string();
        assert!(err.contains("\"/a b\""), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn as_str_and_display_return_the_pattern_as_configured() {
        let p = pattern("images/*");
        assert_eq!(p.as_str(), "images/*");
        assert_eq!(p.to_string(), "images/*");
    }

    #[test]
    fn a_leading_slash_is_optional() {
        for path in ["/images/a", "/images/", "/image", "/x/images/a"] {
            assert_eq!(
                pattern("images/*").matches(path),
                pattern("/images/*").matches(path),
                "{path:?}"
            );
        }
    }

    #[test]
    fn pathological_patterns_finish_instantly() {
        let path = format!("/{}", "a".repeat(100_000));
        let started = Instant::now();
        assert!(!pattern("*a*a*a*a*a*a*b").matches(&path));
        assert!(pattern("*a*a*a*a*a*a*a").matches(&path));
        assert!(!pattern("/*?*?*?*?*?*?*b").matches(&path));
        // A backtracking matcher would take astronomically long here; allow slow CI.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
