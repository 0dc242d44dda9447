//! AWS Signature Version 4 verification of incoming requests, by `Authorization` header or
//! presigned query string, with AWS's error codes and wording so SDK users see familiar text.
//!
//! The canonical request is rebuilt the way botocore builds it for non-S3 services:
//! - URI: the path as received, dot segments and empty segments removed (a trailing `/`
//!   kept), then every byte outside RFC 3986's unreserved set and `/` percent-encoded once
//!   more, so `/a%20b` signs as `/a%2520b`. Kinesis clients always send `/`.
//! - Query: pairs percent-decoded, re-encoded with the unreserved set, sorted by key then
//!   value; a presigned request's `X-Amz-Signature` is left out.
//! - Headers: the signed ones, lowercase, values trimmed with inner whitespace runs
//!   collapsed, repeated headers joined with `,`. A signed header the request lacks counts as
//!   empty, which can only fail the comparison.
//! - Payload: hex SHA-256 of the body; a signed `x-amz-content-sha256` is used instead when
//!   it matches the body or is `UNSIGNED-PAYLOAD`.
//!
//! HTTP/2 requests carry no `Host` header; the caller inserts `host` from the URI authority.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, percent_encode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{ErrorCode, KinesisError};
use crate::config::stream::AccessKey;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";
/// The signing name in botocore's Kinesis model.
const SERVICE: &str = "kinesis";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// How far X-Amz-Date may be from our clock, either way: AWS's 5 minutes.
const MAX_SKEW_SECS: i64 = 300;
/// The longest presigned URL life AWS accepts: 7 days.
const MAX_EXPIRES_SECS: i64 = 604_800;

/// RFC 3986's unreserved characters are the only ones left unencoded.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Paths keep their `/` separators.
const ENCODE_PATH: &AsciiSet = &ENCODE.remove(b'/');

/// The parts of an incoming request that a signature covers, as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The raw path, still percent-encoded, without the query.
    pub path: &'a str,
    /// The raw query string without `?`; empty when there is none.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Who signed a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub access_key_id: String,
    /// From the credential scope: any region is accepted.
    pub region: String,
}

/// Checks the request's SigV4 signature for service `kinesis` against the configured keys.
pub fn verify(
    request: &SignedRequest<'_>,
    keys: &[AccessKey],
    now: SystemTime,
) -> Result<Signer, KinesisError> {
    verify_for(SERVICE, request, keys, now)
}

/// The headers SDKs sign and [`sign`] signs: lowercase, sorted, as SigV4 lists them.
const SIGNED_BY_US: [&str; 3] = ["host", "x-amz-content-sha256", "x-amz-date"];

/// Signs a request as AWS SDKs do for service `kinesis` (Authorization header, with `host`,
/// the body's hash and the time signed), for edgewise's own clients such as
/// `edgewise-cdn sql`. `headers` must hold `host`.
pub fn sign(
    method: &str,
    path: &str,
    headers: &mut HeaderMap,
    body: &[u8],
    key: &AccessKey,
    region: &str,
    now: SystemTime,
) {
    let timestamp = format_basic(epoch_secs(now));
    let payload = hex::encode(Sha256::digest(body));
    let value = |text: &str| {
        http::HeaderValue::from_str(text)
            .unwrap_or_else(|_| unreachable!("SigV4 values are ASCII: {text:?}"))
    };
    headers.insert("x-amz-date", value(&timestamp));
    headers.insert("x-amz-content-sha256", value(&payload));
    let signed: Vec<String> = SIGNED_BY_US.iter().map(|h| (*h).to_string()).collect();
    let signed_headers = SIGNED_BY_US.join(";");
    let request = SignedRequest {
        method,
        path,
        query: "",
        headers,
        body,
    };
    let canonical = canonical_request(&request, &[], false, &signed, &signed_headers, &payload);
    let scope = format!("{}/{region}/{SERVICE}/{TERMINATOR}", &timestamp[..8]);
    let signature = signature(&key.secret, &timestamp, &scope, &canonical);
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        key.id
    );
    headers.insert(http::header::AUTHORIZATION, value(&authorization));
}

fn incomplete(message: impl Into<String>) -> KinesisError {
    KinesisError::new(ErrorCode::IncompleteSignature, message)
}

fn invalid(message: impl Into<String>) -> KinesisError {
    KinesisError::new(ErrorCode::InvalidSignature, message)
}

/// The signature's claims, from the header or the query.
struct Claims {
    credential: String,
    signed_headers: String,
    signature: String,
    /// ISO 8601 basic format, as it goes into the string to sign.
    timestamp: String,
    /// The query carries the signature, which the canonical query then leaves out.
    presigned: bool,
    /// A presigned request's `X-Amz-Expires`: it is good from `timestamp` for this many
    /// seconds instead of within the usual skew.
    expires: Option<i64>,
}

/// The service is a parameter so AWS's generic test vectors (service `service`) apply.
fn verify_for(
    service: &str,
    request: &SignedRequest<'_>,
    keys: &[AccessKey],
    now: SystemTime,
) -> Result<Signer, KinesisError> {
    let query = parse_query(request.query);
    let claims = claims(request, &query)?;
    let scope = Scope::parse(&claims.credential, service)?;
    let signed_at = parse_basic(&claims.timestamp).ok_or_else(|| {
        incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
            claims.timestamp
        ))
    })?;
    let day = &claims.timestamp[..8];
    if scope.date != day {
        return Err(invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{day}', from '{}'.",
            scope.date, claims.timestamp
        )));
    }
    check_time(&claims, signed_at, epoch_secs(now))?;
    let key = keys.iter().find(|k| k.id == scope.key_id).ok_or_else(|| {
        KinesisError::new(
            ErrorCode::UnrecognizedClient,
            "The security token included in the request is invalid.",
        )
    })?;
    let signed: Vec<String> = claims
        .signed_headers
        .split(';')
        .map(str::to_ascii_lowercase)
        .collect();
    if !signed.iter().any(|h| h == "host") {
        return Err(invalid(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    let payload = payload_hash(request, &signed)?;

    let canonical = canonical_request(
        request,
        &query,
        claims.presigned,
        &signed,
        &claims.signed_headers,
        &payload,
    );
    let scope_text = format!("{}/{}/{service}/{TERMINATOR}", scope.date, scope.region);
    let expected = signature(&key.secret, &claims.timestamp, &scope_text, &canonical);
    if bool::from(expected.as_bytes().ct_eq(claims.signature.as_bytes())) {
        Ok(Signer {
            access_key_id: key.id.clone(),
            region: scope.region.to_owned(),
        })
    } else {
        Err(invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ))
    }
}

/// The claims from the Authorization header or, failing that, a presigned query.
fn claims(request: &SignedRequest<'_>, query: &[(String, String)]) -> Result<Claims, KinesisError> {
    match request.headers.get(http::header::AUTHORIZATION) {
        Some(_) if query.iter().any(|(k, _)| k == "X-Amz-Algorithm") => Err(invalid(
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.",
        )),
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| incomplete("The Authorization header is not ASCII text."))?;
            from_header(value, request.headers)
        }
        None if query.iter().any(|(k, _)| is_presign_param(k)) => from_query(query),
        None => Err(KinesisError::new(
            ErrorCode::MissingAuthenticationToken,
            "Missing Authentication Token",
        )),
    }
}

/// The credential scope: `keyid/date/region/service/aws4_request`.
struct Scope<'a> {
    key_id: &'a str,
    date: &'a str,
    region: &'a str,
}

impl<'a> Scope<'a> {
    fn parse(credential: &'a str, service: &str) -> Result<Self, KinesisError> {
        let parts: Vec<&str> = credential.split('/').collect();
        let [key_id, date, region, scope_service, terminator] = parts[..] else {
            return Err(incomplete(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
            )));
        };
        if terminator != TERMINATOR {
            return Err(invalid(format!(
                "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'."
            )));
        }
        if scope_service != service {
            return Err(invalid(format!(
                "Credential should be scoped to correct service: '{service}'."
            )));
        }
        if region.is_empty() {
            return Err(invalid("Credential should be scoped to a valid region."));
        }
        Ok(Self {
            key_id,
            date,
            region,
        })
    }
}

fn from_header(value: &str, headers: &HeaderMap) -> Result<Claims, KinesisError> {
    let trimmed = value.trim();
    let (algorithm, params) = trimmed
        .split_once(char::is_whitespace)
        .unwrap_or((trimmed, ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'; only {ALGORITHM} is accepted."
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    // Parameters are comma-separated; whitespace alone is tolerated too, as no value holds any.
    let separator = |c: char| c == ',' || c.is_whitespace();
    for part in params.split(separator).filter(|p| !p.is_empty()) {
        let Some((name, v)) = part.split_once('=') else {
            return Err(incomplete(format!(
                "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{value}'"
            )));
        };
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        *slot = Some(v.to_owned());
    }
    let timestamp = match headers.get("x-amz-date") {
        Some(v) => v.to_str().ok().map(str::to_owned),
        None => headers
            .get(http::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .map(|t| format_basic(epoch_secs(t))),
    };
    let mut missing = String::new();
    for (name, present) in [
        ("Credential", credential.is_some()),
        ("Signature", signature.is_some()),
        ("SignedHeaders", signed_headers.is_some()),
    ] {
        if !present {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if timestamp.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    match (credential, signed_headers, signature, timestamp) {
        (Some(credential), Some(signed_headers), Some(signature), Some(timestamp)) => Ok(Claims {
            credential,
            signed_headers,
            signature,
            timestamp,
            presigned: false,
            expires: None,
        }),
        _ => Err(incomplete(format!("{missing}Authorization={value}"))),
    }
}

/// The query parameters of a presigned request; `X-Amz-Expires` is optional.
const PRESIGN_PARAMS: [&str; 5] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
    "X-Amz-Date",
];
const EXPIRES_PARAM: &str = "X-Amz-Expires";

fn is_presign_param(name: &str) -> bool {
    name == EXPIRES_PARAM || PRESIGN_PARAMS.contains(&name)
}

fn from_query(query: &[(String, String)]) -> Result<Claims, KinesisError> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let mut missing = String::new();
    for name in PRESIGN_PARAMS.iter().filter(|name| get(name).is_none()) {
        missing.push_str(&format!(
            "AWS query-string parameters must include '{name}'. "
        ));
    }
    let [algorithm, credential, signature, signed_headers, timestamp] = PRESIGN_PARAMS.map(get);
    let (Some(algorithm), Some(credential), Some(signature), Some(signed_headers), Some(timestamp)) =
        (algorithm, credential, signature, signed_headers, timestamp)
    else {
        return Err(incomplete(format!(
            "{missing}Re-examine the query-string parameters."
        )));
    };
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'; only {ALGORITHM} is accepted."
        )));
    }
    let expires = match get(EXPIRES_PARAM) {
        None => None,
        Some(text) => {
            let expires = text
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| incomplete("X-Amz-Expires should be a number"))?;
            if expires > MAX_EXPIRES_SECS {
                return Err(incomplete(format!(
                    "X-Amz-Expires must be less than a week (in seconds) that is {MAX_EXPIRES_SECS}"
                )));
            }
            Some(expires)
        }
    };
    Ok(Claims {
        credential,
        signed_headers,
        signature,
        timestamp,
        presigned: true,
        expires,
    })
}

/// The signing time must be within 5 minutes of our clock, except that a presigned request
/// with `X-Amz-Expires` stays good that long after it (but not before it).
fn check_time(claims: &Claims, signed_at: i64, now: i64) -> Result<(), KinesisError> {
    let ts = &claims.timestamp;
    if signed_at > now.saturating_add(MAX_SKEW_SECS) {
        return Err(invalid(format!(
            "Signature not yet current: {ts} is still later than {} ({} + 5 min.)",
            format_basic(now.saturating_add(MAX_SKEW_SECS)),
            format_basic(now)
        )));
    }
    match claims.expires {
        None if signed_at < now.saturating_sub(MAX_SKEW_SECS) => Err(invalid(format!(
            "Signature expired: {ts} is now earlier than {} ({} - 5 min.)",
            format_basic(now.saturating_sub(MAX_SKEW_SECS)),
            format_basic(now)
        ))),
        Some(expires) if signed_at.saturating_add(expires) < now => Err(invalid(format!(
            "Signature expired: {ts} is now earlier than {} ({} - {expires} sec.)",
            format_basic(now.saturating_sub(expires)),
            format_basic(now)
        ))),
        _ => Ok(()),
    }
}

fn payload_hash(request: &SignedRequest<'_>, signed: &[String]) -> Result<String, KinesisError> {
    let body_hash = hex::encode(Sha256::digest(request.body));
    if !signed.iter().any(|h| h == "x-amz-content-sha256") {
        return Ok(body_hash);
    }
    let claimed = request
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok());
    match claimed {
        Some(UNSIGNED_PAYLOAD) => Ok(UNSIGNED_PAYLOAD.to_owned()),
        Some(v) if v.eq_ignore_ascii_case(&body_hash) => Ok(v.to_owned()),
        _ => Err(invalid(
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )),
    }
}

/// The query's pairs, percent-decoded (`+` stays `+`, as RFC 3986 has it).
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                String::from_utf8_lossy(&percent_decode(s.as_bytes()).collect::<Vec<u8>>())
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn canonical_request(
    request: &SignedRequest<'_>,
    query: &[(String, String)],
    presigned: bool,
    signed: &[String],
    signed_headers: &str,
    payload: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(request.method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(request.path).as_bytes());
    out.push(b'\n');
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| {
            (
                percent_encode(k.as_bytes(), ENCODE).to_string(),
                percent_encode(v.as_bytes(), ENCODE).to_string(),
            )
        })
        .collect();
    pairs.sort();
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    out.extend_from_slice(query.join("&").as_bytes());
    out.push(b'\n');
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, value) in request.headers.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let words = value
                .as_bytes()
                .split(u8::is_ascii_whitespace)
                .filter(|w| !w.is_empty());
            for (j, word) in words.enumerate() {
                if j > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(word);
            }
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload.as_bytes());
    out
}

/// Removes `.`, `..` and empty segments as botocore does, then encodes once more.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = String::from("/");
    normalized.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        normalized.push('/');
    }
    percent_encode(normalized.as_bytes(), ENCODE_PATH).to_string()
}

/// The hex signature of `canonical` under the key derived for `scope`
/// (`date/region/service/aws4_request`).
fn signature(secret: &str, timestamp: &str, scope: &str, canonical: &[u8]) -> String {
    let string_to_sign = format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical))
    );
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in scope.split('/') {
        key = hmac_sha256(&key, part.as_bytes()).to_vec();
    }
    hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()))
}

/// HMAC-SHA256, shared with the token sealing.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn epoch_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// `YYYYMMDDTHHMMSSZ` → epoch seconds; `None` unless it is exactly that and a real date.
pub(crate) fn parse_basic(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = s.get(range)?;
        digits
            .bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let days = days_from_civil(year, month, day);
    // A day past the month's end would land in the next month: reject it by round trip.
    if civil_from_days(days) != (year, month, day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// `secs` since the Unix epoch as ISO 8601 basic format, UTC: `YYYYMMDDTHHMMSSZ`.
pub(crate) fn format_basic(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};
    use std::time::Duration;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn keys() -> Vec<AccessKey> {
        vec![
            AccessKey {
                id: "OTHERKEY".to_owned(),
                secret: "another-secret".to_owned(),
            },
            AccessKey {
                id: "AKIDEXAMPLE".to_owned(),
                secret: SECRET.to_owned(),
            },
        ]
    }

    fn at(basic: &str) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(parse_basic(basic).unwrap() as u64)
    }

    /// A request as captured from botocore: `Name: value` header lines.
    struct Captured {
        method: &'static str,
        path: String,
        query: String,
        headers: HeaderMap,
        body: &'static [u8],
    }

    impl Captured {
        fn new(method: &'static str, target: &str, lines: &str, body: &'static [u8]) -> Self {
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let (path, query) = (path.to_owned(), query.to_owned());
            let mut headers = HeaderMap::new();
            for line in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let (name, value) = line.split_once(": ").unwrap();
                headers.append(
                    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            Self {
                method,
                path,
                query,
                headers,
                body,
            }
        }

        fn request(&self) -> SignedRequest<'_> {
            SignedRequest {
                method: self.method,
                path: &self.path,
                query: &self.query,
                headers: &self.headers,
                body: self.body,
            }
        }

        fn set(&mut self, name: &'static str, value: &str) {
            self.headers
                .insert(name, HeaderValue::from_str(value).unwrap());
        }

        fn verify(&self, now: &str) -> Result<Signer, KinesisError> {
            verify(&self.request(), &keys(), at(now))
        }
    }

    /// AWS's SigV4 test suite (service `service`), reproduced with botocore 1.43.11.
    fn suite(name: &str) -> Captured {
        let (method, target, signature) = match name {
            "get-vanilla" => (
                "GET",
                "/",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            "post-vanilla" => (
                "POST",
                "/",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
            "get-vanilla-query-order-key-case" => (
                "GET",
                "/?Param2=value2&Param1=value1",
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
            _ => unreachable!(),
        };
        Captured::new(
            method,
            target,
            &format!(
                "Host: example.amazonaws.com
                 X-Amz-Date: 20150830T123600Z
                 Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={signature}"
            ),
            b"",
        )
    }

    /// boto3's PutRecord to a local endpoint (botocore 1.43.11, SigV4Auth, eu-west-3).
    fn put_record() -> Captured {
        Captured::new(
            "POST",
            "/",
            "Host: 127.0.0.1:4567
             X-Amz-Target: Kinesis_20131202.PutRecord
             Content-Type: application/x-amz-json-1.1
             User-Agent: Boto3/1.40.0 md/Botocore#1.43.11
             X-Amz-Date: 20261125T000000Z
             Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/eu-west-3/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=2226c6df00cda9bfb1d63b7a84529fb5f8c6101a55278a8e84ae7fc3b3c7d639
             Content-Length: 66",
            br#"{"StreamName": "logs", "Data": "aGVsbG8=", "PartitionKey": "pk-1"}"#,
        )
    }

    fn rejected(captured: &Captured, now: &str) -> (ErrorCode, String) {
        let err = captured.verify(now).unwrap_err();
        (err.code, err.message)
    }

    const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

    #[test]
    fn aws_suite_vectors() {
        for name in [
            "get-vanilla",
            "post-vanilla",
            "get-vanilla-query-order-key-case",
        ] {
            let captured = suite(name);
            let signer = verify_for(
                "service",
                &captured.request(),
                &keys(),
                at("20150830T123600Z"),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(signer.region, "us-east-1");
        }
        // The same vector does not verify for Kinesis.
        let err = verify(
            &suite("get-vanilla").request(),
            &keys(),
            at("20150830T123600Z"),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "Credential should be scoped to correct service: 'kinesis'."
        );
    }

    #[test]
    fn botocore_put_record() {
        assert_eq!(
            put_record().verify("20261125T000000Z").unwrap(),
            Signer {
                access_key_id: "AKIDEXAMPLE".to_owned(),
                region: "eu-west-3".to_owned(),
            }
        );
    }

    #[test]
    fn botocore_odd_path_query_and_header_spacing() {
        let captured = Captured::new(
            "GET",
            "/a/./b/../c%20d//e/?b=x%20y&a=2&a=1&c=%2B~",
            "Host: localhost:4567
             X-Amz-Date: 20261125T000000Z
             Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date;x-custom, Signature=bc8b8917632d38f40f9b40c6d3fc5dfa65ab084d374c2e2b2c6dcf0b79200e1c",
            b"",
        );
        let mut captured = captured;
        captured.set("x-custom", "  one   two  ");
        assert!(captured.verify("20261125T000000Z").is_ok());
        assert_eq!(canonical_uri("/a/./b/../c%20d//e/"), "/a/c%2520d/e/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/.."), "/");
    }

    #[test]
    fn botocore_content_sha256_headers() {
        let signed = |value: &str, signature: &str| {
            Captured::new(
                "POST",
                "/",
                &format!(
                    "Host: kinesis.local
                     X-Amz-Target: Kinesis_20131202.ListStreams
                     Content-Type: application/x-amz-json-1.1
                     X-Amz-Content-SHA256: {value}
                     X-Amz-Date: 20261125T000000Z
                     Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target, Signature={signature}"
                ),
                br#"{"Limit":5}"#,
            )
        };
        let hashed = signed(
            "1dd92f0d0f6e082c84a6472a0975083e33c9a095b75b9ad8f8ed9bde2482b5ef",
            "a66723fab527835552ed9b33796036f60c48d9104adca05772a040dc54da3531",
        );
        assert!(hashed.verify("20261125T000000Z").is_ok());
        let unsigned = signed(
            "UNSIGNED-PAYLOAD",
            "a657eed5596fe00beab178801ab51b019249aba8efd44c4130eda180ad7239d9",
        );
        assert!(unsigned.verify("20261125T000000Z").is_ok());

        let mut tampered = hashed;
        tampered.body = br#"{"Limit":9}"#;
        assert_eq!(
            rejected(&tampered, "20261125T000000Z"),
            (
                ErrorCode::InvalidSignature,
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .to_owned()
            )
        );
    }

    #[test]
    fn botocore_presigned_list_streams() {
        let captured = Captured::new(
            "POST",
            "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261125%2Fus-east-1%2Fkinesis%2Faws4_request&X-Amz-Date=20261125T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=content-type%3Bhost%3Bx-amz-target&X-Amz-Signature=48c778993e7da17ee7a0f10e8d1da4212c1f2e45b08b0765a7c30679aa872b77",
            "Host: localhost:4567
             X-Amz-Target: Kinesis_20131202.ListStreams
             Content-Type: application/x-amz-json-1.1
             Content-Length: 0",
            b"",
        );
        assert!(captured.verify("20261125T000000Z").is_ok());
        assert!(captured.verify("20261125T000500Z").is_ok());
        assert_eq!(
            rejected(&captured, "20261125T000501Z"),
            (
                ErrorCode::InvalidSignature,
                "Signature expired: 20261125T000000Z is now earlier than 20261125T000001Z (20261125T000501Z - 300 sec.)".to_owned()
            )
        );
        let mut other_target = captured;
        other_target.set("x-amz-target", "Kinesis_20131202.DeleteStream");
        assert_eq!(rejected(&other_target, "20261125T000000Z").1, MISMATCH);

        let partial = Captured::new(
            "POST",
            "/?X-Amz-Signature=00&X-Amz-Date=",
            "Host: localhost",
            b"",
        );
        assert_eq!(
            rejected(&partial, "20261125T000000Z"),
            (
                ErrorCode::IncompleteSignature,
                "AWS query-string parameters must include 'X-Amz-Algorithm'. \
                 AWS query-string parameters must include 'X-Amz-Credential'. \
                 AWS query-string parameters must include 'X-Amz-SignedHeaders'. \
                 AWS query-string parameters must include 'X-Amz-Date'. \
                 Re-examine the query-string parameters."
                    .to_owned()
            )
        );

        let mut both = put_record();
        both.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256".to_owned();
        assert_eq!(
            rejected(&both, "20261125T000000Z"),
            (
                ErrorCode::InvalidSignature,
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.".to_owned()
            )
        );

        for (expires, message) in [
            ("X-Amz-Expires=soon", "X-Amz-Expires should be a number"),
            (
                "X-Amz-Expires=604801",
                "X-Amz-Expires must be less than a week (in seconds) that is 604800",
            ),
        ] {
            let target = format!(
                "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a&X-Amz-Signature=b&X-Amz-SignedHeaders=host&X-Amz-Date=c&{expires}"
            );
            let bad_expiry = Captured::new("POST", &target, "Host: localhost", b"");
            assert_eq!(
                rejected(&bad_expiry, "20261125T000000Z"),
                (ErrorCode::IncompleteSignature, message.to_owned())
            );
        }
    }

    #[test]
    fn clock_skew() {
        let captured = put_record();
        assert!(captured.verify("20261125T000500Z").is_ok());
        assert!(captured.verify("20261124T235500Z").is_ok());
        assert_eq!(
            rejected(&captured, "20261125T001000Z"),
            (
                ErrorCode::InvalidSignature,
                "Signature expired: 20261125T000000Z is now earlier than 20261125T000500Z (20261125T001000Z - 5 min.)".to_owned()
            )
        );
        assert_eq!(
            rejected(&captured, "20261124T235000Z"),
            (
                ErrorCode::InvalidSignature,
                "Signature not yet current: 20261125T000000Z is still later than 20261124T235500Z (20261124T235000Z + 5 min.)".to_owned()
            )
        );
    }

    #[test]
    fn missing_authentication() {
        let captured = Captured::new("POST", "/?foo=bar", "Host: localhost", b"{}");
        assert_eq!(
            rejected(&captured, "20261125T000000Z"),
            (
                ErrorCode::MissingAuthenticationToken,
                "Missing Authentication Token".to_owned()
            )
        );
    }

    #[test]
    fn incomplete_authorization_headers() {
        let mut captured = put_record();
        captured.set(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/eu-west-3/kinesis/aws4_request, SignedHeaders=host",
        );
        captured.headers.remove("x-amz-date");
        assert_eq!(
            rejected(&captured, "20261125T000000Z"),
            (
                ErrorCode::IncompleteSignature,
                "Authorization header requires 'Signature' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/eu-west-3/kinesis/aws4_request, SignedHeaders=host".to_owned()
            )
        );

        for (auth, start) in [
            (
                "AWS4-HMAC-SHA256 Credential",
                "'Credential' not a valid key=value pair",
            ),
            ("Bearer abc", "Unsupported AWS 'algorithm': 'Bearer'"),
            (
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/kinesis/aws4_request, SignedHeaders=host, Signature=00",
                "Credential must have exactly 5 slash-delimited elements",
            ),
        ] {
            let mut captured = put_record();
            captured.set("authorization", auth);
            let (code, message) = rejected(&captured, "20261125T000000Z");
            assert_eq!(code, ErrorCode::IncompleteSignature, "{auth}");
            assert!(message.starts_with(start), "{message}");
        }

        let mut bad_date = put_record();
        bad_date.set("x-amz-date", "2026-11-25T00:00:00Z");
        let (code, message) = rejected(&bad_date, "20261125T000000Z");
        assert_eq!(code, ErrorCode::IncompleteSignature);
        assert!(
            message.starts_with(
                "Date must be in ISO-8601 'basic format'. Got '2026-11-25T00:00:00Z'."
            ),
            "{message}"
        );
    }

    #[test]
    fn authorization_parameters_may_be_spaced_freely() {
        let mut captured = put_record();
        captured.set(
            "authorization",
            "AWS4-HMAC-SHA256   Credential=AKIDEXAMPLE/20261125/eu-west-3/kinesis/aws4_request SignedHeaders=content-type;host;x-amz-date;x-amz-target ,Signature=2226c6df00cda9bfb1d63b7a84529fb5f8c6101a55278a8e84ae7fc3b3c7d639 ",
        );
        assert!(captured.verify("20261125T000000Z").is_ok());
    }

    #[test]
    fn odd_signed_header_names_only_fail_the_comparison() {
        let mut captured = put_record();
        captured.set(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/eu-west-3/kinesis/aws4_request, SignedHeaders=host;Bad:Name;;x-amz-date;x{y}, Signature=00",
        );
        assert_eq!(rejected(&captured, "20261125T000000Z").1, MISMATCH);
    }

    #[test]
    fn date_header_stands_in_for_x_amz_date() {
        let mut captured = put_record();
        captured.headers.remove("x-amz-date");
        captured.set("date", "Wed, 25 Nov 2026 00:00:00 GMT");
        // The date is read from Date; the signature (which signed x-amz-date) no longer matches.
        assert_eq!(rejected(&captured, "20261125T000000Z").1, MISMATCH);
    }

    #[test]
    fn scope_errors() {
        let cases = [
            (
                "AKIDEXAMPLE/20261125/eu-west-3/kinesis/aws4_reqest",
                "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_reqest'.",
            ),
            (
                "AKIDEXAMPLE/20261125/eu-west-3/dynamodb/aws4_request",
                "Credential should be scoped to correct service: 'kinesis'.",
            ),
            (
                "AKIDEXAMPLE/20261125//kinesis/aws4_request",
                "Credential should be scoped to a valid region.",
            ),
            (
                "AKIDEXAMPLE/20261124/eu-west-3/kinesis/aws4_request",
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261124' != '20261125', from '20261125T000000Z'.",
            ),
        ];
        for (credential, message) in cases {
            let mut captured = put_record();
            captured.set(
                "authorization",
                &format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00"),
            );
            assert_eq!(
                rejected(&captured, "20261125T000000Z"),
                (ErrorCode::InvalidSignature, message.to_owned()),
                "{credential}"
            );
        }
    }

    #[test]
    fn unknown_key() {
        let mut captured = put_record();
        let auth = captured.headers["authorization"]
            .to_str()
            .unwrap()
            .replace("AKIDEXAMPLE", "AKIDUNKNOWN");
        captured.set("authorization", &auth);
        assert_eq!(
            rejected(&captured, "20261125T000000Z"),
            (
                ErrorCode::UnrecognizedClient,
                "The security token included in the request is invalid.".to_owned()
            )
        );
    }

    #[test]
    fn what_sign_signs_verifies_and_a_changed_body_does_not() {
        let now = at("20261205T080000Z");
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:4567"));
        let body = br#"{"sql": "SELECT 1"}"#;
        sign(
            "POST",
            "/analytics/query",
            &mut headers,
            body,
            &keys()[1],
            "eu-west-1",
            now,
        );
        let request = |body: &'static [u8]| SignedRequest {
            method: "POST",
            path: "/analytics/query",
            query: "",
            headers: &headers,
            body,
        };
        let signer = verify(&request(body), &keys(), now).unwrap();
        assert_eq!(
            (signer.access_key_id.as_str(), signer.region.as_str()),
            ("AKIDEXAMPLE", "eu-west-1")
        );
        assert!(verify(&request(br#"{"sql": "SELECT 2"}"#), &keys(), now).is_err());
    }

    #[test]
    fn host_must_be_signed() {
        let mut captured = put_record();
        captured.set(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/eu-west-3/kinesis/aws4_request,SignedHeaders=x-amz-date,Signature=00",
        );
        assert_eq!(
            rejected(&captured, "20261125T000000Z"),
            (
                ErrorCode::InvalidSignature,
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
                    .to_owned()
            )
        );
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let mut body = put_record();
        body.body = br#"{"StreamName": "logs", "Data": "aGVsbG9=", "PartitionKey": "pk-1"}"#;
        let mut host = put_record();
        host.set("host", "127.0.0.1:4568");
        let mut target = put_record();
        target.set("x-amz-target", "Kinesis_20131202.DeleteStream");
        let mut path = put_record();
        path.path = "/x".to_owned();
        let mut query = put_record();
        query.query = "a=b".to_owned();
        let mut method = put_record();
        method.method = "PUT";
        let mut secret = put_record();
        let auth = secret.headers["authorization"]
            .to_str()
            .unwrap()
            .replace("Signature=2226", "Signature=2227");
        secret.set("authorization", &auth);
        for (what, captured) in [
            ("body", body),
            ("host", host),
            ("target", target),
            ("path", path),
            ("query", query),
            ("method", method),
            ("signature", secret),
        ] {
            assert_eq!(
                rejected(&captured, "20261125T000000Z"),
                (ErrorCode::InvalidSignature, MISMATCH.to_owned()),
                "{what}"
            );
        }
        // An unsigned header may change freely.
        let mut agent = put_record();
        agent.set("user-agent", "curl/8");
        assert!(agent.verify("20261125T000000Z").is_ok());
        // A wrong secret for the right key id fails too.
        let wrong = [AccessKey {
            id: "AKIDEXAMPLE".to_owned(),
            secret: "not-the-secret".to_owned(),
        }];
        let err = verify(&put_record().request(), &wrong, at("20261125T000000Z")).unwrap_err();
        assert_eq!(err.message, MISMATCH);
    }

    #[test]
    fn basic_dates() {
        assert_eq!(parse_basic("19700101T000000Z"), Some(0));
        assert_eq!(parse_basic("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(format_basic(1_440_938_160), "20150830T123600Z");
        assert_eq!(
            parse_basic("20240229T000000Z").map(format_basic).as_deref(),
            Some("20240229T000000Z")
        );
        for bad in [
            "20230229T000000Z",
            "20261325T000000Z",
            "20261125T240000Z",
            "20261125 000000Z",
            "2026112T0000000Z",
            "+0261125T000000Z",
            "20261125T0000é",
        ] {
            assert_eq!(parse_basic(bad), None, "{bad}");
        }
    }
}
