//! Column types by widening: each value seen says the narrowest type that holds it, and a
//! column ends with the narrowest type that holds all of its values.

use crate::config::analytics::SqlType;

/// VARCHAR lengths are rounded up to a power of two within these bounds, so a sample's
/// longest value leaves headroom for the next, longer one.
const MIN_VARCHAR: usize = 8;
const MAX_VARCHAR: usize = 65_535;

/// What one value says about its column, narrowest first among the numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Boolean,
    /// Fits an i32.
    Integer,
    /// Fits an i64.
    BigInt,
    Double,
    /// RFC 3339 or `YYYY-MM-DD HH:MM:SS[.fff]` text.
    Timestamp,
    /// `YYYY-MM-DD` text.
    Date,
    Text,
}

/// One non-null value: its kind and its length as text, which sizes the VARCHAR when the
/// column's values disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Observed {
    pub kind: Kind,
    pub chars: usize,
}

impl Observed {
    /// A JSON string: only text kinds, since the record chose to quote it. Kinds are judged
    /// on the trimmed text, as the input decoder reads non-VARCHAR values; the length is the
    /// text's own, as a VARCHAR keeps it.
    pub fn json_string(text: &str) -> Observed {
        Observed {
            kind: text_kind(text.trim()),
            chars: text.chars().count(),
        }
    }

    /// A CSV or TSV field, where every value is text and a number is known by its look
    /// (trimmed, as for [`Observed::json_string`]).
    pub fn field(text: &str) -> Observed {
        Observed {
            kind: field_kind(text.trim()),
            chars: text.chars().count(),
        }
    }

    /// A JSON integer.
    pub fn integer(n: i64) -> Observed {
        let kind = if i32::try_from(n).is_ok() {
            Kind::Integer
        } else {
            Kind::BigInt
        };
        Observed {
            kind,
            chars: n.to_string().len(),
        }
    }
}

/// A column's type so far: the widening of everything it has held.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Widening {
    /// `None` until a non-null value is seen.
    kind: Option<Kind>,
    /// The longest value as text, in characters.
    max_chars: usize,
}

impl Widening {
    pub fn add(&mut self, value: Observed) {
        self.kind = Some(match self.kind {
            None => value.kind,
            Some(kind) => widen(kind, value.kind),
        });
        self.max_chars = self.max_chars.max(value.chars);
    }

    /// The SQL type proposed: a column that never held a value is VARCHAR(8), the least
    /// committal choice.
    pub fn sql_type(&self) -> SqlType {
        match self.kind {
            Some(Kind::Boolean) => SqlType::Boolean,
            Some(Kind::Integer) => SqlType::Integer,
            Some(Kind::BigInt) => SqlType::BigInt,
            Some(Kind::Double) => SqlType::Double,
            Some(Kind::Timestamp) => SqlType::Timestamp,
            Some(Kind::Date) => SqlType::Date,
            Some(Kind::Text) | None => SqlType::Varchar(Some(varchar_len(self.max_chars))),
        }
    }
}

/// Numbers widen to the wider number; any other disagreement only text can hold (a DATE
/// and a TIMESTAMP too: the input decoder reads a column's values one way).
fn widen(a: Kind, b: Kind) -> Kind {
    use Kind::{BigInt, Double, Integer};
    match (a, b) {
        _ if a == b => a,
        (Integer | BigInt | Double, Integer | BigInt | Double) => a.max(b),
        _ => Kind::Text,
    }
}

/// `chars` rounded up to a power of two, within [`MIN_VARCHAR`] and [`MAX_VARCHAR`].
fn varchar_len(chars: usize) -> u32 {
    let len = chars
        .max(1)
        .next_power_of_two()
        .clamp(MIN_VARCHAR, MAX_VARCHAR);
    u32::try_from(len).unwrap_or(MAX_VARCHAR as u32)
}

/// A CSV or TSV field: `true`/`false` (any case), an integer, a decimal number, or text.
/// Integers with a leading zero stay text: as numbers they would lose it (ZIP codes, ids).
fn field_kind(text: &str) -> Kind {
    if text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false") {
        return Kind::Boolean;
    }
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<i64>() {
            _ if digits.len() > 1 && digits.starts_with('0') => Kind::Text,
            Ok(n) => Observed::integer(n).kind,
            Err(_) => Kind::Double,
        };
    }
    if looks_decimal(text) && text.parse::<f64>().is_ok() {
        return Kind::Double;
    }
    text_kind(text)
}

/// Only digits, signs, a point and an exponent: `f64::from_str` also takes `inf` and `NaN`,
/// which here are words.
fn looks_decimal(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
}

fn text_kind(text: &str) -> Kind {
    if is_date(text.as_bytes()) {
        Kind::Date
    } else if is_timestamp(text.as_bytes()) {
        Kind::Timestamp
    } else {
        Kind::Text
    }
}

/// `YYYY-MM-DD`, a real day of the proleptic Gregorian calendar.
fn is_date(b: &[u8]) -> bool {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = b else {
        return false;
    };
    let (Some(year), Some(month), Some(day)) = (
        number(&[*y0, *y1, *y2, *y3]),
        number(&[*m0, *m1]),
        number(&[*d0, *d1]),
    ) else {
        return false;
    };
    (1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day)
}

/// A date, `T` or a space, `HH:MM:SS`, then an optional fraction of 1 to 9 digits and an
/// optional zone (`Z` or `±HH:MM`): RFC 3339 and the zone-less form SQL writes.
fn is_timestamp(b: &[u8]) -> bool {
    if b.len() < 19 || !is_date(&b[..10]) || !matches!(b[10], b'T' | b't' | b' ') {
        return false;
    }
    if !is_clock(&b[11..19]) {
        return false;
    }
    let mut rest = &b[19..];
    if let [b'.', fraction @ ..] = rest {
        let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return false;
        }
        rest = &fraction[digits..];
    }
    match rest {
        [] | [b'Z' | b'z'] => true,
        [b'+' | b'-', h0, h1, b':', m0, m1] => {
            matches!(number(&[*h0, *h1]), Some(0..=23))
                && matches!(number(&[*m0, *m1]), Some(0..=59))
        }
        _ => false,
    }
}

/// `HH:MM:SS`, allowing a leap second.
fn is_clock(b: &[u8]) -> bool {
    let [h0, h1, b':', m0, m1, b':', s0, s1] = b else {
        return false;
    };
    matches!(number(&[*h0, *h1]), Some(0..=23))
        && matches!(number(&[*m0, *m1]), Some(0..=59))
        && matches!(number(&[*s0, *s1]), Some(0..=60))
}

/// The value of a run of ASCII digits; `None` if any byte is not one.
fn number(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}
