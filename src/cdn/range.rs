//! Byte-range requests (RFC 9110 §14): which part of an object to send, if any.
//!
//! Only a single range is served as `206`. A request for several ranges gets the whole
//! object with `200`, which RFC 9110 §14.2 allows ("a server MAY ignore the Range header
//! field") and which spares us `multipart/byteranges` and the overlapping-range abuse it
//! invites. Anything unparsable is ignored the same way, so a sloppy client still gets its
//! content rather than an error.

use std::time::SystemTime;

use http::HeaderValue;

/// How to answer a request for an object of known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Send the whole object with `200` (no usable Range, or If-Range did not match).
    Full,
    /// Send bytes `start..=end` with `206` and a `Content-Range`.
    Partial {
        /// First byte offset.
        start: u64,
        /// Last byte offset, inclusive, always below the object length.
        end: u64,
    },
    /// Answer `416` with `Content-Range: bytes */len`: no requested byte exists.
    Unsatisfiable,
}

/// One byte-range-spec, before the object length is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-last` or `first-` (`last` = None).
    FromTo(u64, Option<u64>),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

/// Decides how to answer: `range` is the request's `Range`, `if_range` its `If-Range`,
/// `etag`/`last_modified` the stored object's validators, `len` its length in bytes.
pub fn evaluate(
    range: Option<&HeaderValue>,
    if_range: Option<&HeaderValue>,
    etag: Option<&HeaderValue>,
    last_modified: Option<&HeaderValue>,
    len: u64,
) -> RangeOutcome {
    let Some(range) = range else {
        return RangeOutcome::Full;
    };
    // RFC 9110 §13.1.5: a false If-Range means "ignore Range and send everything", which
    // is how a client avoids stitching together bytes of two different versions.
    if let Some(if_range) = if_range
        && !if_range_matches(if_range, etag, last_modified)
    {
        return RangeOutcome::Full;
    }
    let Some(specs) = parse(range) else {
        return RangeOutcome::Full;
    };
    let mut satisfiable = specs.iter().filter_map(|spec| resolve(*spec, len));
    match (specs.len(), satisfiable.next()) {
        (1, Some((start, end))) => RangeOutcome::Partial { start, end },
        // Several ranges, at least one satisfiable: the whole object answers them all.
        (_, Some(_)) => RangeOutcome::Full,
        // §14.1.1: not one range overlaps the object (this is every range when len is 0).
        (_, None) => RangeOutcome::Unsatisfiable,
    }
}

/// Parses `bytes=<spec>[,<spec>…]`; `None` when the header is to be ignored (other unit,
/// bad syntax). Whitespace around tokens is tolerated, the unit is case-insensitive, and
/// empty list elements are skipped as RFC 9110 §5.6.1 requires.
fn parse(range: &HeaderValue) -> Option<Vec<Spec>> {
    let text = range.to_str().ok()?;
    let (unit, set) = text.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let specs = set
        .split(',')
        .map(str::trim)
        .filter(|element| !element.is_empty())
        .map(parse_spec)
        .collect::<Option<Vec<Spec>>>()?;
    (!specs.is_empty()).then_some(specs)
}

fn parse_spec(element: &str) -> Option<Spec> {
    let (first, last) = element.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return Some(Spec::Suffix(number(last)?));
    }
    let first = number(first)?;
    if last.is_empty() {
        return Some(Spec::FromTo(first, None));
    }
    let last = number(last)?;
    // §14.1.1: last < first makes the range-spec invalid, and with it the whole header.
    (last >= first).then_some(Spec::FromTo(first, Some(last)))
}

/// Digits only (no sign, no `+`); a value beyond u64 saturates, which still means "past the
/// end" for positions and "everything" for suffix lengths.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

/// The inclusive byte span a spec selects in an object of `len` bytes, if any.
fn resolve(spec: Spec, len: u64) -> Option<(u64, u64)> {
    let last_byte = len.checked_sub(1)?;
    match spec {
        Spec::FromTo(first, _) if first >= len => None,
        Spec::FromTo(first, last) => Some((first, last.map_or(last_byte, |l| l.min(last_byte)))),
        Spec::Suffix(0) => None,
        // A suffix longer than the object selects all of it (§14.1.3).
        Spec::Suffix(n) => Some((len.saturating_sub(n), last_byte)),
    }
}

/// Whether an `If-Range` validator still describes the stored object. Weak entity-tags
/// never match (§13.1.5 requires the strong comparison), and a date must equal
/// `Last-Modified` exactly, since only an exact match shows nothing changed.
fn if_range_matches(
    if_range: &HeaderValue,
    etag: Option<&HeaderValue>,
    last_modified: Option<&HeaderValue>,
) -> bool {
    let Ok(condition) = if_range.to_str().map(str::trim) else {
        return false;
    };
    if condition.starts_with('"') {
        return etag.and_then(|e| e.to_str().ok()).map(str::trim) == Some(condition)
            && is_strong_etag(condition);
    }
    if condition.starts_with("W/") {
        return false;
    }
    match (
        parse_date(condition),
        last_modified.and_then(|v| v.to_str().ok()),
    ) {
        (Some(wanted), Some(stored)) => parse_date(stored) == Some(wanted),
        _ => false,
    }
}

fn is_strong_etag(text: &str) -> bool {
    text.len() >= 2
        && text.starts_with('"')
        && text.ends_with('"')
        && !text[1..text.len() - 1].contains('"')
}

fn parse_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text.trim()).ok()
}

/// `Content-Range` for a `206`: `bytes start-end/len`.
pub fn content_range(start: u64, end: u64, len: u64) -> HeaderValue {
    debug_assert!(start <= end && end < len, "bytes {start}-{end}/{len}");
    digits_header(format!("bytes {start}-{end}/{len}"))
}

/// `Content-Range` for a `416`: `bytes */len`, telling the client the actual length.
pub fn unsatisfied_range(len: u64) -> HeaderValue {
    digits_header(format!("bytes */{len}"))
}

fn digits_header(text: String) -> HeaderValue {
    // Built only from ASCII letters, digits, ' ', '-', '*' and '/': always a valid value.
    HeaderValue::try_from(text).expect("ASCII digits and punctuation form a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(text: &str) -> HeaderValue {
        HeaderValue::from_str(text).unwrap()
    }

    fn partial(start: u64, end: u64) -> RangeOutcome {
        RangeOutcome::Partial { start, end }
    }

    #[test]
    fn range_headers_are_evaluated_against_the_object_length() {
        use RangeOutcome::{Full, Unsatisfiable};
        // (Range, len, expected)
        let cases: &[(Option<&str>, u64, RangeOutcome)] = &[
            (None, 100, Full),
            (Some("bytes=0-9"), 100, partial(0, 9)),
            (Some("bytes=10-"), 100, partial(10, 99)),
            (Some("bytes=-10"), 100, partial(90, 99)),
            (Some("bytes=-1000"), 100, partial(0, 99)),
            (Some("bytes=-0"), 100, Unsatisfiable),
            (Some("bytes=50-5000"), 100, partial(50, 99)),
            (Some("bytes=99-99"), 100, partial(99, 99)),
            (Some("bytes=100-"), 100, Unsatisfiable),
            (Some("bytes=100-200"), 100, Unsatisfiable),
            (Some("bytes=99999999999999999999999-"), 100, Unsatisfiable),
            (Some("bytes=-99999999999999999999999"), 100, partial(0, 99)),
            (Some("bytes=0-99999999999999999999999"), 100, partial(0, 99)),
            (Some("BYTES=0-0"), 100, partial(0, 0)),
            (Some(" bytes = 1 - 2 "), 100, partial(1, 2)),
            (Some("bytes=1-2,"), 100, partial(1, 2)),
            (Some("bytes=0-1,5-6"), 100, Full),
            (Some("bytes=200-300,0-1"), 100, Full),
            (Some("bytes=200-300,400-"), 100, Unsatisfiable),
            (Some("bytes=5-1"), 100, Full),
            (Some("bytes=abc"), 100, Full),
            (Some("bytes=1-x"), 100, Full),
            (Some("bytes=+1-2"), 100, Full),
            (Some("bytes=-"), 100, Full),
            (Some("bytes="), 100, Full),
            (Some("bytes=0-1,junk"), 100, Full),
            (Some("items=0-1"), 100, Full),
            (Some("0-1"), 100, Full),
            (Some("bytes=0-0"), 0, Unsatisfiable),
            (Some("bytes=-5"), 0, Unsatisfiable),
            (Some("bytes=0-"), 0, Unsatisfiable),
            (Some("bytes=junk"), 0, Full),
        ];
        for &(range, len, expected) in cases {
            let range = range.map(hv);
            assert_eq!(
                evaluate(range.as_ref(), None, None, None, len),
                expected,
                "{range:?} of {len} bytes"
            );
        }
    }

    #[test]
    fn if_range_honours_the_range_only_for_an_unchanged_object() {
        let modified = "Wed, 21 Oct 2015 07:28:00 GMT";
        // (If-Range, object ETag, object Last-Modified, expected)
        let cases: &[(&str, Option<&str>, Option<&str>, RangeOutcome)] = &[
            ("\"v1\"", Some("\"v1\""), None, partial(0, 9)),
            ("\"v1\"", Some("\"v2\""), None, RangeOutcome::Full),
            ("\"v1\"", None, Some(modified), RangeOutcome::Full),
            ("W/\"v1\"", Some("W/\"v1\""), None, RangeOutcome::Full),
            ("\"v1\"", Some("W/\"v1\""), None, RangeOutcome::Full),
            ("W/\"v1\"", Some("\"v1\""), None, RangeOutcome::Full),
            (modified, None, Some(modified), partial(0, 9)),
            (modified, Some("\"v1\""), Some(modified), partial(0, 9)),
            (
                "Wed, 21 Oct 2015 07:28:01 GMT",
                None,
                Some(modified),
                RangeOutcome::Full,
            ),
            (modified, None, None, RangeOutcome::Full),
            (modified, None, Some("garbage"), RangeOutcome::Full),
            ("not a date", None, Some(modified), RangeOutcome::Full),
            (
                "\"unterminated",
                Some("\"unterminated"),
                None,
                RangeOutcome::Full,
            ),
        ];
        for &(if_range, etag, last_modified, expected) in cases {
            let (etag, last_modified) = (etag.map(hv), last_modified.map(hv));
            let got = evaluate(
                Some(&hv("bytes=0-9")),
                Some(&hv(if_range)),
                etag.as_ref(),
                last_modified.as_ref(),
                100,
            );
            assert_eq!(
                got, expected,
                "If-Range {if_range:?}, {etag:?}, {last_modified:?}"
            );
        }
    }

    #[test]
    fn a_failed_if_range_sends_everything_even_for_an_unsatisfiable_range() {
        let got = evaluate(
            Some(&hv("bytes=500-")),
            Some(&hv("\"old\"")),
            Some(&hv("\"new\"")),
            None,
            100,
        );
        assert_eq!(got, RangeOutcome::Full);
    }

    #[test]
    fn if_range_without_range_changes_nothing() {
        let got = evaluate(None, Some(&hv("\"v1\"")), Some(&hv("\"v1\"")), None, 100);
        assert_eq!(got, RangeOutcome::Full);
    }

    #[test]
    fn content_range_headers_are_formatted_per_rfc_9110() {
        assert_eq!(content_range(0, 9, 100), "bytes 0-9/100");
        assert_eq!(content_range(99, 99, 100), "bytes 99-99/100");
        assert_eq!(unsatisfied_range(100), "bytes */100");
        assert_eq!(unsatisfied_range(0), "bytes */0");
    }
}
