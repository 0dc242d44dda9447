//! Whether an origin response may be stored, and for how long: RFC 9111 storability with
//! CloudFront's TTL table on top (MinTTL / DefaultTTL / MaxTTL, error caching).
//!
//! Everything here is a pure function of the request facts, the response status and
//! headers, the clock and the policy, so the cache proper can stay about storage and the
//! rules can be tested as tables.

use std::time::{Duration, SystemTime};

use http::header::{AGE, CACHE_CONTROL, DATE, EXPIRES, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::targeted::targeted_cache_control;

/// RFC 9111 §1.2.2: a delta-seconds too large to represent is taken as 2^31 seconds. We cap
/// every delta there, which also keeps `SystemTime + ttl` far from overflowing.
pub(super) const MAX_DELTA_SECS: u64 = 1 << 31;

/// A cache behaviour's TTL bounds, as CloudFront configures them per behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlPolicy {
    /// Floor on the lifetime; above zero it also makes CloudFront cache `no-store`,
    /// `no-cache` and `private` responses for this long.
    pub min: Duration,
    /// Lifetime when the origin gives none (no `max-age`, `s-maxage` or `Expires`).
    pub default: Duration,
    /// Ceiling on any origin-given lifetime.
    pub max: Duration,
}

impl Default for TtlPolicy {
    /// CloudFront's legacy defaults (0 s / 1 day / 1 year), so an unconfigured behaviour
    /// caches the way people expect from CloudFront.
    fn default() -> Self {
        TtlPolicy {
            min: Duration::ZERO,
            default: Duration::from_secs(86_400),
            max: Duration::from_secs(31_536_000),
        }
    }
}

/// What to do with a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storability {
    /// Store it, with these freshness rules.
    Store(Freshness),
    /// Not stored; the reason goes into logs and an `X-Cache` detail: "no-store", "private",
    /// "set-cookie", "authorization", "vary-star", "method", "status", "must-understand" or
    /// "zero-ttl".
    Pass(&'static str),
}

/// How a stored response may be reused, fixed at storage time so reuse needs no headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freshness {
    /// Freshness lifetime remaining at storage time (the response's `Age` already
    /// subtracted), so the cache only has to compare it with time spent in its own store.
    pub ttl: Duration,
    /// How long past `ttl` the response may still be served while a background revalidation
    /// runs (`stale-while-revalidate=N`); zero when absent or when `must_revalidate` forbids it.
    pub stale_while_revalidate: Duration,
    /// How long past `ttl` the response may be served when the origin fails
    /// (`stale-if-error=N`). `None`: not given, so CloudFront's default of serving stale on
    /// error applies; `Some(ZERO)`: never. `must_revalidate` turns `None` into `Some(ZERO)`,
    /// but an explicit `stale-if-error` still applies (RFC 5861 §4: "regardless of other
    /// freshness information").
    pub stale_if_error: Option<Duration>,
    /// `must-revalidate`, `proxy-revalidate` or `s-maxage` (which implies `proxy-revalidate`,
    /// RFC 9111 §5.2.2.10): once stale, the response must be revalidated before use.
    pub must_revalidate: bool,
    /// `no-cache`: stored, but revalidated with the origin on every use (`ttl` is zero).
    pub revalidate_always: bool,
}

/// The request facts that decide storability.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    /// Only GET and HEAD responses are stored.
    pub method: Method,
    /// A request with credentials gets a response a shared cache may not reuse unless the
    /// origin explicitly allows it (RFC 9111 §3.5).
    pub has_authorization: bool,
}

/// Response `Cache-Control` directives, merged from every `Cache-Control` field line.
///
/// Durations are `Some(ZERO)` when a directive is present with a missing or invalid argument
/// (RFC 9111 §4.2.1: such a response is to be treated as stale). When a directive repeats,
/// the first occurrence wins (the other option §4.2.1 allows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// `max-age=N`.
    pub max_age: Option<Duration>,
    /// `s-maxage=N`: shared caches' own max-age, taking precedence over `max-age`.
    pub s_maxage: Option<Duration>,
    /// `no-store`.
    pub no_store: bool,
    /// `no-cache`, qualified (`no-cache="Set-Cookie"`) or not: caches commonly treat both
    /// the same, as RFC 9111 §5.2.2.4 notes.
    pub no_cache: bool,
    /// `private`, qualified or not, for the same reason.
    pub private: bool,
    /// `public`.
    pub public: bool,
    /// `must-revalidate`.
    pub must_revalidate: bool,
    /// `proxy-revalidate`.
    pub proxy_revalidate: bool,
    /// `no-transform`: intermediaries must not alter the content (no compression either).
    pub no_transform: bool,
    /// `immutable` (RFC 8246).
    pub immutable: bool,
    /// `must-understand` (RFC 9111 §5.2.2.3): store only when the status code's caching
    /// rules are known, and then `no-store` (sent for caches that do not know it) is ignored.
    pub must_understand: bool,
    /// `stale-while-revalidate=N` (RFC 5861).
    pub stale_while_revalidate: Option<Duration>,
    /// `stale-if-error=N` (RFC 5861).
    pub stale_if_error: Option<Duration>,
}

/// Parses every `Cache-Control` field line of a response, tolerantly: unknown directives are
/// ignored, names are case-insensitive, quoted arguments are unquoted, and a malformed
/// line cannot make the others unreadable.
pub fn parse_cache_control(headers: &HeaderMap) -> CacheControl {
    let mut cc = CacheControl::default();
    for value in headers.get_all(CACHE_CONTROL) {
        let text = String::from_utf8_lossy(value.as_bytes());
        for element in split_list(&text) {
            let (name, argument) = match element.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(unquote(argument.trim()))),
                None => (element.trim(), None),
            };
            let first = |slot: &mut Option<Duration>| {
                if slot.is_none() {
                    *slot = Some(delta_seconds(argument.as_deref()));
                }
            };
            match name.to_ascii_lowercase().as_str() {
                "max-age" => first(&mut cc.max_age),
                "s-maxage" => first(&mut cc.s_maxage),
                "stale-while-revalidate" => first(&mut cc.stale_while_revalidate),
                "stale-if-error" => first(&mut cc.stale_if_error),
                "no-store" => cc.no_store = true,
                "no-cache" => cc.no_cache = true,
                "private" => cc.private = true,
                "public" => cc.public = true,
                "must-revalidate" => cc.must_revalidate = true,
                "proxy-revalidate" => cc.proxy_revalidate = true,
                "no-transform" => cc.no_transform = true,
                "immutable" => cc.immutable = true,
                "must-understand" => cc.must_understand = true,
                _ => {}
            }
        }
    }
    cc
}

/// Splits a comma-separated header list, leaving commas inside quoted strings alone
/// (`no-cache="Set-Cookie, Foo"` is one element) and dropping empty elements.
fn split_list(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, byte) in text.bytes().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.retain(|part| !part.trim().is_empty());
    parts
}

/// The argument of a directive with any quoted-string form undone (`"60"` → `60`); a value
/// with an unterminated quote is kept as it is, and will then fail to parse as a number.
fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' {
                    chars.next().unwrap_or(c)
                } else {
                    c
                });
            }
            out
        }
        None => value.to_owned(),
    }
}

/// A delta-seconds argument; missing or invalid counts as zero (stale), see [`CacheControl`].
fn delta_seconds(argument: Option<&str>) -> Duration {
    match argument {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            let secs = digits.parse::<u64>().unwrap_or(MAX_DELTA_SECS);
            Duration::from_secs(secs.min(MAX_DELTA_SECS))
        }
        _ => Duration::ZERO,
    }
}

/// How a status code may be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusClass {
    /// Heuristically cacheable (RFC 9110 §15.1): stored with DefaultTTL when no lifetime given.
    Default,
    /// Stored only when the origin gives an explicit lifetime.
    ExplicitOnly,
    /// An error: stored for the error-caching TTL, as CloudFront does.
    Error,
    /// Never stored.
    Never,
}

fn classify(status: u16) -> StatusClass {
    match status {
        // RFC 9110 §15.1 also lets 404, 405, 410, 414 and 501 be cached heuristically, but
        // CloudFront treats every 4xx/5xx as an error, cached for the error TTL: so do we.
        200 | 203 | 204 | 206 | 300 | 301 | 308 => StatusClass::Default,
        // A 304 validates an entry the cache already has; it is never an entry of its own.
        304 => StatusClass::Never,
        // CloudFront never caches 416: it depends on the request's Range, not the object.
        416 => StatusClass::Never,
        200..=399 => StatusClass::ExplicitOnly,
        400..=599 => StatusClass::Error,
        _ => StatusClass::Never,
    }
}

/// The status codes whose caching rules RFC 9110 gives, which `must-understand` asks about.
fn understood(status: u16) -> bool {
    matches!(
        status,
        200..=206 | 300..=305 | 307 | 308 | 400..=417 | 421 | 422 | 426 | 500..=505
    )
}

/// Decides whether a response to `request` may be stored, and its freshness if so.
///
/// Responses carrying `Set-Cookie` are never stored. CloudFront does store them (and strips
/// or forwards the cookie per policy), but like nginx and Varnish defaults we refuse: a
/// cached `Set-Cookie` hands one visitor's session to the next, and that mistake is far
/// costlier than a cache miss.
///
/// Error responses (every 4xx/5xx, as CloudFront) are stored for
/// `error_ttl`, or for an explicit origin lifetime capped at `policy.max` if that is longer,
/// as CloudFront does; `no-store`/`private` still keep them out.
pub fn decide(
    request: &RequestFacts,
    status: u16,
    response: &HeaderMap,
    now: SystemTime,
    policy: &TtlPolicy,
    error_ttl: Duration,
    targeted: &[HeaderName],
) -> Storability {
    if request.method != Method::GET && request.method != Method::HEAD {
        return Storability::Pass("method");
    }
    let class = classify(status);
    if class == StatusClass::Never {
        return Storability::Pass("status");
    }
    // A targeted field (RFC 9213) replaces Cache-Control and Expires for us.
    let (cc, expires) = match targeted_cache_control(response, targeted) {
        Some(cc) => (cc, None),
        None => (
            parse_cache_control(response),
            expires_lifetime(response, now),
        ),
    };
    if cc.must_understand && !understood(status) {
        return Storability::Pass("must-understand");
    }
    // CloudFront's MinTTL > 0 overrides no-store/private/no-cache, but not for errors.
    let min_overrides = !policy.min.is_zero() && class != StatusClass::Error;
    if cc.no_store && !cc.must_understand && !min_overrides {
        return Storability::Pass("no-store");
    }
    if cc.private && !min_overrides {
        return Storability::Pass("private");
    }
    if response.contains_key(SET_COOKIE) {
        return Storability::Pass("set-cookie");
    }
    if request.has_authorization && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate) {
        return Storability::Pass("authorization");
    }
    if has_vary_star(response) {
        return Storability::Pass("vary-star");
    }

    let explicit = cc.s_maxage.or(cc.max_age).or(expires);
    let (ttl, revalidate_always) = match class {
        StatusClass::Error => {
            let from_origin = explicit.map_or(Duration::ZERO, |e| e.min(policy.max));
            // Our own error TTL is not the origin's lifetime, so `Age` does not shorten it.
            (from_origin.max(error_ttl), false)
        }
        StatusClass::ExplicitOnly if explicit.is_none() => return Storability::Pass("status"),
        _ if min_overrides && (cc.no_store || cc.private || cc.no_cache) => {
            (policy.min.saturating_sub(age(response)), false)
        }
        _ if cc.no_cache => (Duration::ZERO, true),
        _ => (
            ttl_from_table(explicit, policy).saturating_sub(age(response)),
            false,
        ),
    };

    let must_revalidate = cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.is_some();
    let freshness = Freshness {
        ttl,
        stale_while_revalidate: if must_revalidate {
            Duration::ZERO
        } else {
            cc.stale_while_revalidate.unwrap_or(Duration::ZERO)
        },
        stale_if_error: match cc.stale_if_error {
            None if must_revalidate => Some(Duration::ZERO),
            given => given,
        },
        must_revalidate,
        revalidate_always,
    };
    let has_stale_window = !freshness.stale_while_revalidate.is_zero()
        || freshness.stale_if_error.is_some_and(|d| !d.is_zero());
    if freshness.ttl.is_zero() && !has_stale_window && !revalidate_always {
        return Storability::Pass("zero-ttl");
    }
    Storability::Store(freshness)
}

/// CloudFront's TTL table: an origin lifetime is capped by MaxTTL (and raised to MinTTL when
/// that is set); no lifetime means DefaultTTL (at least MinTTL).
fn ttl_from_table(explicit: Option<Duration>, policy: &TtlPolicy) -> Duration {
    match explicit {
        // max-then-min rather than `clamp`, which panics on a misconfigured min > max.
        Some(lifetime) => lifetime.max(policy.min).min(policy.max),
        None => policy.default.max(policy.min),
    }
}

/// `Expires − Date` (or `Expires − now` without a valid `Date`); an unparsable `Expires`
/// (including the common `0` and `-1`) means already expired (RFC 9111 §5.3).
fn expires_lifetime(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let expires = headers.get(EXPIRES)?;
    let Some(expires) = http_date(expires) else {
        return Some(Duration::ZERO);
    };
    let date = headers.get(DATE).and_then(http_date).unwrap_or(now);
    let lifetime = expires.duration_since(date).unwrap_or(Duration::ZERO);
    Some(lifetime.min(Duration::from_secs(MAX_DELTA_SECS)))
}

fn http_date(value: &HeaderValue) -> Option<SystemTime> {
    httpdate::parse_http_date(value.to_str().ok()?.trim()).ok()
}

/// The response's `Age`: time it already spent in caches upstream. Only the first field
/// line's first value counts (`Age: 7200, 0` is 7200 seconds, as cache-tests expect); a
/// value that is not a non-negative integer is unknown, taken as zero rather than refusing
/// the response.
fn age(headers: &HeaderMap) -> Duration {
    let Some(first) = headers.get(AGE).and_then(|v| v.to_str().ok()) else {
        return Duration::ZERO;
    };
    let value = first.split([',', ';']).next().unwrap_or_default().trim();
    delta_seconds(Some(value))
}

/// `Vary: *` says the response depends on something outside the request: never reusable.
fn has_vary_star(headers: &HeaderMap) -> bool {
    headers.get_all(VARY).iter().any(|value| {
        String::from_utf8_lossy(value.as_bytes())
            .split(',')
            .any(|field| field.trim() == "*")
    })
}

/// How long a stored response has existed: its `Age` when stored plus time since. A clock
/// that stepped backwards counts as no time passed rather than an error.
pub fn current_age(stored_at: SystemTime, now: SystemTime, initial_age: Duration) -> Duration {
    initial_age.saturating_add(now.duration_since(stored_at).unwrap_or(Duration::ZERO))
}

/// Whether a stored response may be served without contacting the origin: its remaining
/// lifetime at storage (`ttl`, `Age` already subtracted) has not run out, and it is not a
/// `no-cache` response that must be revalidated on every use.
pub fn is_fresh(freshness: &Freshness, stored_at: SystemTime, now: SystemTime) -> bool {
    !freshness.revalidate_always && current_age(stored_at, now, Duration::ZERO) < freshness.ttl
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn now() -> SystemTime {
        UNIX_EPOCH + S(1_700_000_000)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn fresh(ttl: u64) -> Freshness {
        Freshness {
            ttl: S(ttl),
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: None,
            must_revalidate: false,
            revalidate_always: false,
        }
    }

    fn store(ttl: u64) -> Storability {
        Storability::Store(fresh(ttl))
    }

    /// A stored response that must be revalidated once stale (must-revalidate or s-maxage).
    fn strict(ttl: u64) -> Storability {
        Storability::Store(Freshness {
            must_revalidate: true,
            stale_if_error: Some(Duration::ZERO),
            ..fresh(ttl)
        })
    }

    const P0: TtlPolicy = TtlPolicy {
        min: Duration::from_secs(0),
        default: Duration::from_secs(86_400),
        max: Duration::from_secs(31_536_000),
    };
    const PMIN: TtlPolicy = TtlPolicy {
        min: Duration::from_secs(60),
        default: Duration::from_secs(3_600),
        max: Duration::from_secs(7_200),
    };

    #[test]
    fn decide_follows_rfc_9111_and_cloudfront_ttl_rules() {
        let in_hour = httpdate::fmt_http_date(now() + S(3_600));
        let an_hour_ago = httpdate::fmt_http_date(now() - S(3_600));
        let get = Method::GET;
        // (case, method, authorization, status, headers, policy, expected)
        type Case<'a> = (
            &'a str,
            Method,
            bool,
            u16,
            Vec<(&'a str, &'a str)>,
            TtlPolicy,
            Storability,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("max-age is used", get.clone(), false, 200, vec![("cache-control", "max-age=600")], P0, store(600)),
            ("no lifetime means DefaultTTL", get.clone(), false, 200, vec![], P0, store(86_400)),
            ("max-age is capped by MaxTTL", get.clone(), false, 200, vec![("cache-control", "max-age=99999999")], P0, store(31_536_000)),
            ("s-maxage wins over max-age and implies must-revalidate", get.clone(), false, 200, vec![("cache-control", "max-age=10, s-maxage=300")], P0, strict(300)),
            ("HEAD is stored like GET", Method::HEAD, false, 200, vec![("cache-control", "max-age=5")], P0, store(5)),
            ("POST is never stored", Method::POST, false, 200, vec![("cache-control", "max-age=600")], P0, Storability::Pass("method")),
            ("no-store passes", get.clone(), false, 200, vec![("cache-control", "no-store")], P0, Storability::Pass("no-store")),
            ("private passes", get.clone(), false, 200, vec![("cache-control", "private, max-age=60")], P0, Storability::Pass("private")),
            ("qualified private passes", get.clone(), false, 200, vec![("cache-control", "private=\"x-user, x-id\"")], P0, Storability::Pass("private")),
            ("no-cache is stored to revalidate on every use", get.clone(), false, 200, vec![("cache-control", "no-cache, max-age=600")], P0,
                Storability::Store(Freshness { revalidate_always: true, ..fresh(0) })),
            ("MinTTL caches no-store for MinTTL", get.clone(), false, 200, vec![("cache-control", "no-store")], PMIN, store(60)),
            ("MinTTL caches private for MinTTL", get.clone(), false, 200, vec![("cache-control", "private, max-age=3000")], PMIN, store(60)),
            ("MinTTL caches no-cache for MinTTL without revalidating", get.clone(), false, 200, vec![("cache-control", "no-cache")], PMIN, store(60)),
            ("MinTTL raises a short max-age", get.clone(), false, 200, vec![("cache-control", "max-age=5")], PMIN, store(60)),
            ("MinTTL policy still caps at MaxTTL", get.clone(), false, 200, vec![("cache-control", "max-age=9000")], PMIN, store(7_200)),
            ("MinTTL policy keeps DefaultTTL when no lifetime", get.clone(), false, 200, vec![], PMIN, store(3_600)),
            ("MinTTL above DefaultTTL wins", get.clone(), false, 200, vec![],
                TtlPolicy { min: S(5_000), ..PMIN }, store(5_000)),
            ("Set-Cookie passes", get.clone(), false, 200, vec![("cache-control", "max-age=60"), ("set-cookie", "a=b")], P0, Storability::Pass("set-cookie")),
            ("Set-Cookie passes even with MinTTL", get.clone(), false, 200, vec![("set-cookie", "a=b")], PMIN, Storability::Pass("set-cookie")),
            ("Authorization passes", get.clone(), true, 200, vec![("cache-control", "max-age=60")], P0, Storability::Pass("authorization")),
            ("Authorization with public is stored", get.clone(), true, 200, vec![("cache-control", "public, max-age=60")], P0, store(60)),
            ("Authorization with s-maxage is stored", get.clone(), true, 200, vec![("cache-control", "s-maxage=60")], P0, strict(60)),
            ("Authorization with must-revalidate is stored", get.clone(), true, 200, vec![("cache-control", "must-revalidate, max-age=60")], P0, strict(60)),
            ("Vary star passes", get.clone(), false, 200, vec![("vary", "Accept-Encoding, *")], P0, Storability::Pass("vary-star")),
            ("Vary of named fields is stored", get.clone(), false, 200, vec![("vary", "Accept-Encoding")], P0, store(86_400)),
            ("Expires minus Date", get.clone(), false, 200, vec![("date", &an_hour_ago), ("expires", &in_hour)], P0, store(7_200)),
            ("Expires minus now without Date", get.clone(), false, 200, vec![("expires", &in_hour)], P0, store(3_600)),
            ("Expires minus now with a bogus Date", get.clone(), false, 200, vec![("date", "yesterday"), ("expires", &in_hour)], P0, store(3_600)),
            ("past Expires is zero ttl", get.clone(), false, 200, vec![("expires", &an_hour_ago)], P0, Storability::Pass("zero-ttl")),
            ("invalid Expires is zero ttl", get.clone(), false, 200, vec![("expires", "0")], P0, Storability::Pass("zero-ttl")),
            ("invalid Expires with MinTTL is MinTTL", get.clone(), false, 200, vec![("expires", "-1")], PMIN, store(60)),
            ("max-age wins over Expires", get.clone(), false, 200, vec![("expires", &in_hour), ("cache-control", "max-age=10")], P0, store(10)),
            ("Age is subtracted", get.clone(), false, 200, vec![("cache-control", "max-age=600"), ("age", "100")], P0, store(500)),
            ("Age beyond max-age leaves zero", get.clone(), false, 200, vec![("cache-control", "max-age=600"), ("age", "1000")], P0, Storability::Pass("zero-ttl")),
            ("bogus Age is ignored", get.clone(), false, 200, vec![("cache-control", "max-age=600"), ("age", "-5")], P0, store(600)),
            ("Age is subtracted from DefaultTTL", get.clone(), false, 200, vec![("age", "400")], P0, store(86_000)),
            ("only Age's first value counts: old, 0 is old", get.clone(), false, 200, vec![("cache-control", "max-age=3600"), ("age", "7200, 0")], P0, Storability::Pass("zero-ttl")),
            ("only Age's first value counts: 0, old is new", get.clone(), false, 200, vec![("cache-control", "max-age=3600"), ("age", "0, 7200")], P0, store(3600)),
            ("only Age's first line counts", get.clone(), false, 200, vec![("cache-control", "max-age=3600"), ("age", "7200"), ("age", "0")], P0, Storability::Pass("zero-ttl")),
            ("a parameter on Age is not part of it", get.clone(), false, 200, vec![("cache-control", "max-age=3600"), ("age", "7200;foo=bar")], P0, Storability::Pass("zero-ttl")),
            ("must-understand with an unknown status is not stored", get.clone(), false, 299, vec![("cache-control", "max-age=3600, must-understand")], P0, Storability::Pass("must-understand")),
            ("must-understand with a known status ignores no-store", get.clone(), false, 200, vec![("cache-control", "max-age=3600, no-store, must-understand")], P0, store(3600)),
            ("a float Age is ignored", get.clone(), false, 200, vec![("cache-control", "max-age=3600"), ("age", "7200.0")], P0, store(3600)),
            ("CDN-Cache-Control wins over a shorter max-age", get.clone(), false, 200, vec![("cache-control", "max-age=1"), ("cdn-cache-control", "max-age=3600")], P0, store(3600)),
            ("CDN-Cache-Control wins over a longer max-age", get.clone(), false, 200, vec![("cache-control", "max-age=3600"), ("cdn-cache-control", "max-age=1")], P0, store(1)),
            ("CDN-Cache-Control max-age stores despite Cache-Control no-store", get.clone(), false, 200, vec![("cache-control", "no-store"), ("cdn-cache-control", "max-age=10000")], P0, store(10_000)),
            ("CDN-Cache-Control no-store passes despite max-age and Expires", get.clone(), false, 200, vec![("cache-control", "max-age=10000"), ("cdn-cache-control", "no-store"), ("expires", &in_hour)], P0, Storability::Pass("no-store")),
            ("CDN-Cache-Control private passes", get.clone(), false, 200, vec![("cdn-cache-control", "private"), ("cache-control", "max-age=10000")], P0, Storability::Pass("private")),
            ("CDN-Cache-Control no-cache revalidates on every use", get.clone(), false, 200, vec![("cdn-cache-control", "no-cache"), ("cache-control", "max-age=10000")], P0,
                Storability::Store(Freshness { revalidate_always: true, ..fresh(0) })),
            ("CDN-Cache-Control replaces a past Expires", get.clone(), false, 200, vec![("cdn-cache-control", "max-age=3600"), ("expires", &an_hour_ago)], P0, store(3600)),
            ("CDN-Cache-Control max-age=0 passes despite a future Expires", get.clone(), false, 200, vec![("cdn-cache-control", "max-age=0"), ("expires", &in_hour)], P0, Storability::Pass("zero-ttl")),
            ("Age counts against CDN-Cache-Control's max-age", get.clone(), false, 200, vec![("cdn-cache-control", "max-age=3600"), ("age", "7200")], P0, Storability::Pass("zero-ttl")),
            ("an invalid CDN-Cache-Control is ignored", get.clone(), false, 200, vec![("cdn-cache-control", "max-age=10000, &&&&&"), ("cache-control", "no-store")], P0, Storability::Pass("no-store")),
            ("a CDN-Cache-Control directive of the wrong type voids the field", get.clone(), false, 200, vec![("cdn-cache-control", "max-age=\"10000\""), ("cache-control", "no-store")], P0, Storability::Pass("no-store")),
            ("a space before = makes CDN-Cache-Control invalid", get.clone(), false, 200, vec![("cache-control", "max-age=1"), ("cdn-cache-control", "max-age =100")], P0, store(1)),
            ("max-age=0 passes", get.clone(), false, 200, vec![("cache-control", "max-age=0")], P0, Storability::Pass("zero-ttl")),
            ("max-age=0 with stale-while-revalidate is stored", get.clone(), false, 200, vec![("cache-control", "max-age=0, stale-while-revalidate=30")], P0,
                Storability::Store(Freshness { stale_while_revalidate: S(30), ..fresh(0) })),
            ("max-age=0 with stale-if-error is stored", get.clone(), false, 200, vec![("cache-control", "max-age=0, stale-if-error=300")], P0,
                Storability::Store(Freshness { stale_if_error: Some(S(300)), ..fresh(0) })),
            ("several Cache-Control lines are merged", get.clone(), false, 200, vec![("cache-control", "public"), ("cache-control", "max-age=120"), ("cache-control", "stale-if-error=0")], P0,
                Storability::Store(Freshness { stale_if_error: Some(Duration::ZERO), ..fresh(120) })),
            ("quoted max-age is accepted", get.clone(), false, 200, vec![("cache-control", "max-age=\"90\"")], P0, store(90)),
            ("bogus max-age is stale", get.clone(), false, 200, vec![("cache-control", "max-age=soon")], P0, Storability::Pass("zero-ttl")),
            ("bogus max-age is stale and not DefaultTTL even with Expires", get.clone(), false, 200, vec![("cache-control", "max-age=-1"), ("expires", &in_hour)], P0, Storability::Pass("zero-ttl")),
            ("directive names are case-insensitive", get.clone(), false, 200, vec![("cache-control", "MAX-AGE=45, No-Store")], P0, Storability::Pass("no-store")),
            ("unknown directives are ignored", get.clone(), false, 200, vec![("cache-control", "foo, bar=\"a,b\", max-age=30")], P0, store(30)),
            ("must-revalidate forbids stale-while-revalidate", get.clone(), false, 200, vec![("cache-control", "max-age=60, must-revalidate, stale-while-revalidate=30, stale-if-error=10")], P0,
                Storability::Store(Freshness { must_revalidate: true, stale_if_error: Some(S(10)), ..fresh(60) })),
            ("proxy-revalidate is must-revalidate for us", get.clone(), false, 200, vec![("cache-control", "max-age=60, proxy-revalidate")], P0, strict(60)),
            ("301 is heuristically cacheable", get.clone(), false, 301, vec![], P0, store(86_400)),
            ("404 is an error: cached for the error TTL, as CloudFront", get.clone(), false, 404, vec![], P0, store(10)),
            ("302 without a lifetime passes", get.clone(), false, 302, vec![], P0, Storability::Pass("status")),
            ("302 with max-age is stored", get.clone(), false, 302, vec![("cache-control", "max-age=30")], P0, store(30)),
            ("307 with Expires is stored", get.clone(), false, 307, vec![("expires", &in_hour)], P0, store(3_600)),
            ("201 without a lifetime passes even with MinTTL", get.clone(), false, 201, vec![], PMIN, Storability::Pass("status")),
            ("304 is never an entry of its own", get.clone(), false, 304, vec![("cache-control", "max-age=30")], P0, Storability::Pass("status")),
            ("500 is cached for the error TTL", get.clone(), false, 500, vec![], P0, store(10)),
            ("503 with a longer max-age uses it", get.clone(), false, 503, vec![("cache-control", "max-age=30")], P0, store(30)),
            ("403 with a shorter max-age keeps the error TTL", get.clone(), false, 403, vec![("cache-control", "max-age=3")], P0, store(10)),
            ("error no-store passes", get.clone(), false, 502, vec![("cache-control", "no-store")], P0, Storability::Pass("no-store")),
            ("error private passes even with MinTTL", get.clone(), false, 500, vec![("cache-control", "private")], PMIN, Storability::Pass("private")),
            ("416 is never stored", get.clone(), false, 416, vec![], P0, Storability::Pass("status")),
            ("1xx is never stored", get.clone(), false, 103, vec![], P0, Storability::Pass("status")),
            ("unknown status is never stored", get.clone(), false, 799, vec![], P0, Storability::Pass("status")),
        ];
        for (name, method, auth, status, pairs, policy, expected) in cases {
            let request = RequestFacts {
                method,
                has_authorization: auth,
            };
            let targeted = [HeaderName::from_static(
                super::super::targeted::CDN_CACHE_CONTROL,
            )];
            let got = decide(
                &request,
                status,
                &headers(&pairs),
                now(),
                &policy,
                S(10),
                &targeted,
            );
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn a_zero_error_ttl_without_origin_lifetime_passes() {
        let request = RequestFacts {
            method: Method::GET,
            has_authorization: false,
        };
        let got = decide(
            &request,
            500,
            &HeaderMap::new(),
            now(),
            &P0,
            Duration::ZERO,
            &[],
        );
        assert_eq!(got, Storability::Pass("zero-ttl"));
    }

    #[test]
    fn cache_control_parsing_is_tolerant() {
        // (header lines, expected)
        #[rustfmt::skip]
        let cases: Vec<(Vec<&str>, CacheControl)> = vec![
            (vec![], CacheControl::default()),
            (vec!["max-age=60"], CacheControl { max_age: Some(S(60)), ..Default::default() }),
            (vec!["max-age=60, max-age=5"], CacheControl { max_age: Some(S(60)), ..Default::default() }),
            (vec!["max-age"], CacheControl { max_age: Some(Duration::ZERO), ..Default::default() }),
            (vec!["max-age=1.5"], CacheControl { max_age: Some(Duration::ZERO), ..Default::default() }),
            (vec!["max-age=99999999999999999999999"], CacheControl { max_age: Some(S(MAX_DELTA_SECS)), ..Default::default() }),
            (vec![" , ,Public ,, s-maxage = 7 "], CacheControl { public: true, s_maxage: Some(S(7)), ..Default::default() }),
            (vec!["no-cache=\"set-cookie, x-a\", immutable"], CacheControl { no_cache: true, immutable: true, ..Default::default() }),
            (vec!["x=\"unterminated, max-age=5"], CacheControl::default()),
            (vec!["stale-while-revalidate=\"30\"", "STALE-IF-ERROR=abc"], CacheControl {
                stale_while_revalidate: Some(S(30)), stale_if_error: Some(Duration::ZERO), ..Default::default() }),
            (vec!["no-transform, must-revalidate, proxy-revalidate, private, no-store"], CacheControl {
                no_transform: true, must_revalidate: true, proxy_revalidate: true, private: true, no_store: true, ..Default::default() }),
        ];
        for (lines, expected) in cases {
            let pairs: Vec<(&str, &str)> = lines.iter().map(|l| ("cache-control", *l)).collect();
            assert_eq!(parse_cache_control(&headers(&pairs)), expected, "{lines:?}");
        }
    }

    #[test]
    fn non_utf8_cache_control_does_not_hide_other_directives() {
        let mut map = HeaderMap::new();
        map.append(
            CACHE_CONTROL,
            HeaderValue::from_bytes(b"max-age=30, x=\xff").unwrap(),
        );
        assert_eq!(parse_cache_control(&map).max_age, Some(S(30)));
    }

    #[test]
    fn current_age_and_freshness_count_time_in_our_store() {
        let stored = now();
        let f = fresh(100);
        // (seconds after storage, expected is_fresh)
        for (after, expected) in [(0, true), (99, true), (100, false), (500, false)] {
            assert_eq!(
                is_fresh(&f, stored, stored + S(after)),
                expected,
                "{after}s"
            );
        }
        assert_eq!(current_age(stored, stored + S(5), S(20)), S(25));
        assert_eq!(
            current_age(stored, stored - S(5), S(20)),
            S(20),
            "clock stepped back"
        );
        let always = Freshness {
            revalidate_always: true,
            ..fresh(100)
        };
        assert!(!is_fresh(&always, stored, stored));
    }

    #[test]
    fn the_default_policy_is_cloudfronts_legacy_one() {
        assert_eq!(TtlPolicy::default(), P0);
    }
}
