//! When an X.509 certificate stops being valid, read straight from its DER: the few fields
//! before `validity` are stepped over, so no certificate parser is needed to tell whether a
//! development certificate is due for renewal.

/// Unix seconds at which the certificate `der` expires (its `notAfter`); `None` if `der` is
/// not a well-formed certificate up to there.
pub(super) fn not_after(der: &[u8]) -> Option<i64> {
    validity(der).map(|(_, not_after)| not_after)
}

/// Unix seconds of the certificate's `notBefore` and `notAfter`; `None` if `der` is not a
/// well-formed certificate up to there.
pub fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (certificate, _) = tlv(der, SEQUENCE)?;
    let (tbs, _) = tlv(certificate, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&EXPLICIT_VERSION) {
        rest = tlv(rest, EXPLICIT_VERSION)?.1;
    }
    rest = tlv(rest, INTEGER)?.1; // serialNumber
    rest = tlv(rest, SEQUENCE)?.1; // signature algorithm
    rest = tlv(rest, SEQUENCE)?.1; // issuer
    let (validity, _) = tlv(rest, SEQUENCE)?;
    let (not_before, rest) = time(validity)?;
    let (not_after, _) = time(rest)?;
    Some((not_before, not_after))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const EXPLICIT_VERSION: u8 = 0xA0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The contents of the DER element at the start of `bytes` if its tag is `tag`, and the
/// bytes after it.
fn tlv(bytes: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    if first != tag {
        return None;
    }
    let (&short, rest) = rest.split_first()?;
    let (len, rest) = if short < 0x80 {
        (usize::from(short), rest)
    } else {
        let count = usize::from(short & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (digits, rest) = rest.split_at(count);
        let len = digits
            .iter()
            .fold(0_usize, |len, &b| (len << 8) | usize::from(b));
        (len, rest)
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) at
/// the start of `bytes`, as Unix seconds, and the bytes after it.
fn time(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let tag = *bytes.first()?;
    let (text, rest) = match tag {
        UTC_TIME | GENERALIZED_TIME => tlv(bytes, tag)?,
        _ => return None,
    };
    let digits = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| digits.get(range)?.parse::<i64>().ok();
    let (year, at) = if tag == UTC_TIME {
        let yy = number(0..2)?;
        (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
    } else {
        (number(0..4)?, 4)
    };
    if digits.len() != at + 10 {
        return None;
    }
    let field = |i: usize| number(at + 2 * i..at + 2 * i + 2);
    let (month, day) = (field(0)?, field(1)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let seconds = field(2)? * 3600 + field(3)? * 60 + field(4)?;
    Some((days_from_civil(year, month, day) * 86_400 + seconds, rest))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_valid_until(year: i32, month: u8, day: u8) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["x.test".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(year, month, day);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_utc_and_generalized_times() {
        // date -d 2031-03-04 +%s, date -d 4096-01-01 +%s
        assert_eq!(
            not_after(&cert_valid_until(2031, 3, 4)),
            Some(1_930_348_800)
        );
        assert_eq!(
            not_after(&cert_valid_until(4096, 1, 1)),
            Some(67_090_118_400)
        );
        assert_eq!(
            not_after(&cert_valid_until(1999, 12, 31)),
            Some(946_598_400)
        );
    }

    #[test]
    fn anything_else_is_none() {
        let der = cert_valid_until(2031, 3, 4);
        assert_eq!(not_after(&der[..der.len() / 2]), None);
        assert_eq!(not_after(b"not a certificate"), None);
        assert_eq!(not_after(&[]), None);
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }
}
