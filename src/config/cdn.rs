//! `[cdn]`: listeners, limits, certificates and CloudFront-style distributions, validated
//! into ready-to-serve values (compiled path patterns, parsed header names, origin indices).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Uri, header};
use toml::Spanned;

use super::acme::{self, AcmeCert, AcmeConfig};
use super::diag::{ConfigError, SourceMap};
use super::logs::LogConfig;
use super::parent_tier::{self, ParentTier};
pub use super::raw::Selection;
use super::raw::{RawBehavior, RawCdn, RawDistribution, RawOrigin};
use super::realtime_logs::RealtimeLogsConfig;
use super::units::{ConfigDuration, ConfigSize};
use crate::cdn::cache::freshness::TtlPolicy;
use crate::cdn::cache::targeted::CDN_CACHE_CONTROL;
use crate::cdn::pattern::PathPattern;
use crate::cdn::viewer::GeoRestriction;
use crate::geo::{Code, GeoConfig};
use ipnet::IpNet;

const DEFAULT_CACHE_SIZE: u64 = 256 << 20;
const DEFAULT_MAX_OBJECT_SIZE: u64 = 64 << 20;
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_HEADER_SIZE: u64 = 64 << 10;
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
const DEFAULT_HTTP3_MAX_STREAMS: u32 = 100;
/// CloudFront caches error responses for 10 s unless told otherwise.
const DEFAULT_ERROR_TTL: Duration = Duration::from_secs(10);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// CloudFront's cache policy defaults: MinTTL 0, DefaultTTL 1 day, MaxTTL 1 year.
const DEFAULT_TTLS: TtlPolicy = TtlPolicy {
    min: Duration::ZERO,
    default: Duration::from_secs(86_400),
    max: Duration::from_secs(31_536_000),
};
/// CloudFront's origin failover statuses when a group lists none.
const DEFAULT_FAILOVER_STATUS: [u16; 4] = [500, 502, 503, 504];

/// Validated `[cdn]`.
#[derive(Debug, Clone)]
pub struct CdnConfig {
    pub https_listen: Vec<SocketAddr>,
    pub http_listen: Vec<SocketAddr>,
    /// `POST /invalidations`, `GET /metrics`.
    pub admin_listen: Vec<SocketAddr>,
    /// Bearer token the admin API requires; without one the admin API refuses everything.
    pub admin_token: Option<String>,
    /// Bytes of cached objects kept in memory. Defaults to 256 MiB.
    pub cache_size: u64,
    /// Larger responses are streamed through, not cached. Defaults to 64 MiB.
    pub max_object_size: u64,
    /// Folder for the files that hold large cached bodies (see `cdn::cache::mapped`);
    /// `None`: memory files.
    pub cache_body_dir: Option<PathBuf>,
    /// A request's headers must arrive within this. Defaults to 10 s.
    pub header_timeout: Duration,
    /// Larger request headers get 431. Defaults to 64 KiB.
    pub max_header_size: usize,
    /// Keep-alive connections idle this long are closed. Defaults to 60 s.
    pub idle_timeout: Duration,
    /// Further connections are closed at once. Defaults to 10,000.
    pub max_connections: usize,
    /// How long error responses (4xx/5xx) are cached. Defaults to 10 s, as CloudFront.
    pub error_ttl: Duration,
    /// The RFC 9213 targeted fields honoured before `Cache-Control`, in order: the
    /// configured `targeted_cache_control` first, then `CDN-Cache-Control`. Never sent on
    /// to viewers.
    pub targeted_cache_control: Vec<HeaderName>,
    /// The `[[cdn.certs]]` read from PEM files.
    pub certs: Vec<CertFiles>,
    /// The `[[cdn.certs]]` with `acme = true`, got from `acme`'s CA.
    pub acme_certs: Vec<AcmeCert>,
    /// `[cdn.acme]`: the CA and challenge of `acme_certs`.
    pub acme: Option<AcmeConfig>,
    /// `data_dir`: the ACME account and certificates.
    pub data_dir: Option<PathBuf>,
    /// HTTP/3 over QUIC on the UDP ports of `https_listen`, advertised by Alt-Svc.
    pub http3: bool,
    /// Concurrent requests (bidirectional streams) a QUIC connection may open. Defaults
    /// to 100, as HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS commonly is.
    pub http3_max_streams: u32,
    /// Accept HTTP/3 requests in 0-RTT early data; only GET and HEAD are answered before
    /// the handshake completes (RFC 8470: the rest get 425). Defaults to false.
    pub http3_0rtt: bool,
    /// Write a self-signed certificate for the distributions' hosts where the configured
    /// files are missing. Defaults to true.
    pub generate_dev_certs: bool,
    pub distributions: Vec<Distribution>,
    /// Peers whose X-Forwarded-For is believed. Defaults to none.
    pub trusted_proxies: Vec<IpNet>,
    /// Public keys that may sign URLs and cookies, by group.
    pub key_groups: Vec<KeyGroupConfig>,
    /// `[geo]`: where viewers are (country headers, geo restriction).
    pub geo: GeoConfig,
    /// `[cdn.realtime_logs]`: a record per request onto a stream.
    pub realtime_logs: Option<RealtimeLogsConfig>,
    /// `access_log`: a line per response, with the real-time log's fields. Defaults to off
    /// (`None`); fixed at start.
    pub access_log: Option<LogConfig>,
}

/// A key group: public keys (PEM text, checked at load) by key id.
#[derive(Debug, Clone)]
pub struct KeyGroupConfig {
    pub id: String,
    pub keys: Vec<(String, String)>,
}

/// A certificate chain and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One distribution: the hosts it answers, its origins and behaviors.
#[derive(Debug, Clone)]
pub struct Distribution {
    pub id: String,
    /// Lower-case host names (no port).
    pub hosts: Vec<String>,
    pub viewer_protocol: ViewerProtocol,
    pub geo_restriction: Option<GeoRestriction>,
    pub custom_errors: Vec<CustomError>,
    /// Origins then origin groups; behaviors refer to them by index.
    pub origins: Vec<Origin>,
    /// First match wins.
    pub behaviors: Vec<Behavior>,
    /// Another edgewise-cdn that misses are fetched from, instead of the origins.
    pub parent: Option<ParentTier>,
}

/// CloudFront's viewer protocol policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewerProtocol {
    AllowAll,
    RedirectToHttps,
    HttpsOnly,
}

/// A page served instead of an error status.
#[derive(Debug, Clone)]
pub struct CustomError {
    pub status: u16,
    /// Path of the page, fetched through the distribution like any request.
    pub path: String,
    /// Status sent with the page. Defaults to `status`.
    pub response_status: u16,
    /// How long the error is cached. Defaults to the CDN's error TTL.
    pub ttl: Option<Duration>,
}

/// Where requests go.
#[derive(Debug, Clone)]
pub struct Origin {
    pub id: String,
    pub target: OriginTarget,
}

/// An origin's kind.
#[derive(Debug, Clone)]
pub enum OriginTarget {
    Http(HttpOrigin),
    /// A local folder, served like an S3 bucket.
    Dir(PathBuf),
    /// Indices of member origins, tried in order for GET/HEAD/OPTIONS on these statuses or on
    /// connection errors and timeouts.
    Group {
        members: Vec<usize>,
        failover_status: Vec<u16>,
    },
}

/// An HTTP or HTTPS origin.
#[derive(Debug, Clone)]
pub struct HttpOrigin {
    /// scheme://authority, without a trailing slash.
    pub base: Uri,
    /// Path prefix put before the request path ("" for none).
    pub path_prefix: String,
    /// `Host` sent to the origin. Defaults to the URL's authority.
    pub host: HeaderValue,
    pub connect_timeout: Duration,
    /// Time to the response headers, and between body chunks.
    pub read_timeout: Duration,
    /// Added to every origin request (e.g. a shared secret).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// A cache behavior.
#[derive(Debug, Clone)]
pub struct Behavior {
    pub pattern: PathPattern,
    /// Index into the distribution's origins.
    pub origin: usize,
    pub allowed_methods: Vec<Method>,
    pub ttl: TtlPolicy,
    pub compress: bool,
    pub cache_key: CacheKeyPolicy,
    /// Sent to the origin but not part of the cache key.
    pub forward_headers: Vec<HeaderName>,
    pub viewer_protocol: ViewerProtocol,
    /// Indices of the key groups whose signatures admit requests; empty: public.
    pub trusted_key_groups: Vec<usize>,
}

/// What besides the path goes into the cache key (and so to the origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKeyPolicy {
    pub query_strings: Selection,
    pub headers: Vec<HeaderName>,
    pub cookies: Selection,
}

/// Checks `[cdn]`, pushing every problem onto `errors`.
pub(super) fn validate(
    raw: &RawCdn,
    geo: &GeoConfig,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> CdnConfig {
    let mut taken = Vec::new();
    let https_listen = addresses(
        &raw.https_listen,
        "cdn.https_listen",
        &mut taken,
        map,
        errors,
    );
    let http_listen = addresses(&raw.http_listen, "cdn.http_listen", &mut taken, map, errors);
    let admin_listen = addresses(
        &raw.admin_listen,
        "cdn.admin_listen",
        &mut taken,
        map,
        errors,
    );
    if https_listen.is_empty() && http_listen.is_empty() {
        errors.push(map.error(
            0..0,
            "cdn",
            "needs at least one listener: https_listen or http_listen",
        ));
    }
    let admin_token = raw.admin_token.as_ref().map(|t| t.get_ref().clone());
    if let Some(token) = &raw.admin_token
        && token.get_ref().len() < 8
    {
        errors.push(map.error(
            token.span(),
            "cdn.admin_token",
            "must be at least 8 characters",
        ));
    }
    if !admin_listen.is_empty() && admin_token.is_none() {
        errors.push(map.error(
            raw.admin_listen[0].span(),
            "cdn.admin_token",
            "the admin API needs a token (Authorization: Bearer <token>)",
        ));
    }
    let size = |v: &Option<Spanned<ConfigSize>>, default: u64| {
        v.as_ref().map_or(default, |s| s.get_ref().0)
    };
    let duration = |v: &Option<Spanned<ConfigDuration>>, default: Duration| {
        v.as_ref().map_or(default, |d| d.get_ref().0)
    };
    let max_connections = match &raw.max_connections {
        Some(n) if (1..=1_000_000).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => {
            errors.push(map.error(
                n.span(),
                "cdn.max_connections",
                format!("{} is out of range (1 to 1000000)", n.get_ref()),
            ));
            DEFAULT_MAX_CONNECTIONS
        }
        None => DEFAULT_MAX_CONNECTIONS,
    };
    for (key, value) in [
        ("cdn.header_timeout", &raw.header_timeout),
        ("cdn.idle_timeout", &raw.idle_timeout),
    ] {
        if let Some(v) = value.as_ref().filter(|v| v.get_ref().0.is_zero()) {
            errors.push(map.error(v.span(), key, "must be longer than 0s"));
        }
    }
    if !https_listen.is_empty() && raw.certs.is_empty() {
        errors.push(map.error(
            raw.https_listen[0].span(),
            "cdn.certs",
            "HTTPS listeners need at least one [[cdn.certs]] entry",
        ));
    }
    let trusted_proxies = trusted_proxies(&raw.trusted_proxies, map, errors);
    let key_groups = key_groups(raw, map, base, errors);
    let group_ids: Vec<&str> = key_groups.iter().map(|g| g.id.as_str()).collect();
    let mut distributions: Vec<Distribution> = Vec::new();
    let mut hosts_seen: HashMap<String, String> = HashMap::new();
    for (i, raw_distribution) in raw.distributions.iter().enumerate() {
        let key = format!("cdn.distributions[{i}]");
        if let Some(d) = distribution(
            raw_distribution.get_ref(),
            &key,
            &group_ids,
            map,
            base,
            errors,
        ) {
            for host in &d.hosts {
                if let Some(other) = hosts_seen.insert(host.clone(), d.id.clone()) {
                    errors.push(map.error(
                        raw_distribution.get_ref().hosts.span(),
                        format!("{key}.hosts"),
                        format!("{host:?} is also a host of distribution {other:?}"),
                    ));
                }
            }
            if distributions.iter().any(|known| known.id == d.id) {
                errors.push(map.error(
                    raw_distribution.get_ref().id.span(),
                    format!("{key}.id"),
                    format!("{:?} is used by another distribution", d.id),
                ));
            }
            distributions.push(d);
        }
    }
    if raw.distributions.is_empty() {
        errors.push(map.error(
            0..0,
            "cdn.distributions",
            "needs at least one [[cdn.distributions]] entry",
        ));
    }
    let acme = raw
        .acme
        .as_ref()
        .and_then(|a| acme::validate(a, map, base, errors));
    let data_dir = raw.data_dir.as_ref().map(|d| base.join(d.get_ref()));
    let (certs, acme_certs) = certs(raw, acme.as_ref(), &distributions, map, base, errors);
    acme::check_requirements(raw, acme_certs.len(), data_dir.as_deref(), map, errors);
    CdnConfig {
        https_listen,
        http_listen,
        admin_listen,
        admin_token,
        cache_size: size(&raw.cache_size, DEFAULT_CACHE_SIZE),
        max_object_size: size(&raw.max_object_size, DEFAULT_MAX_OBJECT_SIZE),
        cache_body_dir: cache_body_dir(raw, map, base, errors),
        header_timeout: duration(&raw.header_timeout, DEFAULT_HEADER_TIMEOUT),
        max_header_size: size(&raw.max_header_size, DEFAULT_MAX_HEADER_SIZE).min(1 << 20) as usize,
        idle_timeout: duration(&raw.idle_timeout, DEFAULT_IDLE_TIMEOUT),
        max_connections,
        error_ttl: duration(&raw.error_ttl, DEFAULT_ERROR_TTL),
        targeted_cache_control: targeted_cache_control(raw, map, errors),
        certs,
        acme_certs,
        acme,
        data_dir,
        http3: raw.http3.unwrap_or(false),
        http3_max_streams: http3_max_streams(raw, map, errors),
        http3_0rtt: raw.http3_0rtt.unwrap_or(false),
        generate_dev_certs: raw.generate_dev_certs.unwrap_or(true),
        distributions,
        trusted_proxies,
        key_groups,
        geo: geo.clone(),
        realtime_logs: raw
            .realtime_logs
            .as_ref()
            .map(|r| super::realtime_logs::validate(r, map, errors)),
        access_log: raw
            .access_log
            .as_ref()
            .and_then(|log| super::logs::validate(log, "cdn.access_log", map, base, errors)),
    }
}

/// `cdn.targeted_cache_control`: a field name of our own for RFC 9213 (e.g.
/// `Edgewise-Cache-Control`), honoured before `CDN-Cache-Control`, which every CDN honours.
/// A field with a meaning of its own to caches or viewers cannot be one.
fn targeted_cache_control(
    raw: &RawCdn,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Vec<HeaderName> {
    let cdn = HeaderName::from_static(CDN_CACHE_CONTROL);
    let Some(spanned) = &raw.targeted_cache_control else {
        return vec![cdn];
    };
    let reserved = [
        header::CACHE_CONTROL,
        header::EXPIRES,
        header::AGE,
        header::DATE,
        header::VARY,
        header::PRAGMA,
    ];
    match HeaderName::from_bytes(spanned.get_ref().trim().as_bytes()) {
        Ok(name) if reserved.contains(&name) => {
            errors.push(map.error(
                spanned.span(),
                "cdn.targeted_cache_control",
                format!("{name} has a meaning of its own; name a field for this CDN, such as \"Edgewise-Cache-Control\""),
            ));
            vec![cdn]
        }
        Ok(name) if name == cdn => vec![cdn],
        Ok(name) => vec![name, cdn],
        Err(_) => {
            errors.push(map.error(
                spanned.span(),
                "cdn.targeted_cache_control",
                format!("{:?} is not a header field name", spanned.get_ref()),
            ));
            vec![cdn]
        }
    }
}

/// `http3_max_streams`: 1 to 10,000.
fn http3_max_streams(raw: &RawCdn, map: &SourceMap, errors: &mut Vec<ConfigError>) -> u32 {
    match &raw.http3_max_streams {
        None => DEFAULT_HTTP3_MAX_STREAMS,
        Some(n) if (1..=10_000).contains(n.get_ref()) => *n.get_ref() as u32,
        Some(n) => {
            errors.push(map.error(
                n.span(),
                "cdn.http3_max_streams",
                format!("{} is out of range (1 to 10000)", n.get_ref()),
            ));
            DEFAULT_HTTP3_MAX_STREAMS
        }
    }
}

/// `[[cdn.certs]]`: the PEM file pairs, then the ACME certificates' names.
fn certs(
    raw: &RawCdn,
    acme: Option<&AcmeConfig>,
    distributions: &[Distribution],
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> (Vec<CertFiles>, Vec<AcmeCert>) {
    let (mut files, mut acme_certs) = (Vec::new(), Vec::new());
    for (i, entry) in raw.certs.iter().enumerate() {
        let key = format!("cdn.certs[{i}]");
        let cert = entry.get_ref();
        let is_acme = cert.acme.as_ref().is_some_and(|a| *a.get_ref());
        match (is_acme, &cert.cert, &cert.key) {
            (false, Some(c), Some(k)) => {
                if let Some(names) = &cert.names {
                    errors.push(map.error(
                        names.span(),
                        format!("{key}.names"),
                        "names are for ACME certificates (acme = true); a PEM file's names are its own",
                    ));
                }
                files.push(CertFiles {
                    cert: base.join(c.get_ref()),
                    key: base.join(k.get_ref()),
                });
            }
            (false, _, _) => errors.push(map.error(
                entry.span(),
                key,
                "needs cert = \"file.pem\" and key = \"file.pem\", or acme = true with names",
            )),
            (true, None, None) => acme_certs.extend(acme::cert_names(
                cert.names.as_ref(),
                entry.span(),
                &key,
                acme,
                distributions,
                map,
                errors,
            )),
            (true, _, _) => errors.push(map.error(
                entry.span(),
                key,
                "an ACME certificate is kept under [cdn] data_dir: leave out cert and key",
            )),
        }
    }
    (files, acme_certs)
}

/// `cdn.cache_body_dir`, relative to the config file; created at start when missing.
fn cache_body_dir(
    raw: &RawCdn,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<PathBuf> {
    let dir = raw.cache_body_dir.as_ref()?;
    if dir.get_ref().is_empty() {
        errors.push(map.error(
            dir.span(),
            "cdn.cache_body_dir",
            "must not be empty (leave it out to keep large bodies in memory files)",
        ));
        return None;
    }
    Some(base.join(dir.get_ref()))
}

fn trusted_proxies(
    raw: &[Spanned<String>],
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Vec<IpNet> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, text)| {
            let parsed = text
                .get_ref()
                .parse::<IpNet>()
                .or_else(|_| text.get_ref().parse::<std::net::IpAddr>().map(IpNet::from));
            parsed
                .map_err(|_| {
                    errors.push(map.error(
                        text.span(),
                        format!("cdn.trusted_proxies[{i}]"),
                        format!("{:?} is not an address or CIDR block", text.get_ref()),
                    ))
                })
                .ok()
        })
        .collect()
}

/// Key groups with their public keys read and parsed now, so a bad key fails the check.
fn key_groups(
    raw: &RawCdn,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Vec<KeyGroupConfig> {
    let mut groups: Vec<KeyGroupConfig> = Vec::new();
    for (gi, group) in raw.key_groups.iter().enumerate() {
        let g = group.get_ref();
        let gkey = format!("cdn.key_groups[{gi}]");
        if groups.iter().any(|known| known.id == *g.id.get_ref()) {
            errors.push(map.error(
                g.id.span(),
                format!("{gkey}.id"),
                format!("{:?} is used by another key group", g.id.get_ref()),
            ));
        }
        let mut keys = Vec::new();
        for (ki, key) in g.keys.iter().enumerate() {
            let k = key.get_ref();
            let path = base.join(k.public_key.get_ref());
            let field = format!("{gkey}.keys[{ki}].public_key");
            match std::fs::read_to_string(&path) {
                Ok(pem) => match crate::cdn::signed::parse_public_key_pem(&pem) {
                    Ok(_) => keys.push((k.id.get_ref().clone(), pem)),
                    Err(e) => errors.push(map.error(
                        k.public_key.span(),
                        field,
                        format!("{}: {e}", path.display()),
                    )),
                },
                Err(e) => errors.push(map.error(
                    k.public_key.span(),
                    field,
                    format!("cannot read {}: {e}", path.display()),
                )),
            }
        }
        if g.keys.is_empty() {
            errors.push(map.error(
                g.id.span(),
                format!("{gkey}.keys"),
                "a key group needs at least one key",
            ));
        }
        groups.push(KeyGroupConfig {
            id: g.id.get_ref().clone(),
            keys,
        });
    }
    groups
}

pub(super) fn addresses(
    raw: &[Spanned<String>],
    key: &str,
    taken: &mut Vec<SocketAddr>,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for (i, addr) in raw.iter().enumerate() {
        match addr.get_ref().parse::<SocketAddr>() {
            Ok(a) if a.port() != 0 && taken.contains(&a) => errors.push(map.error(
                addr.span(),
                format!("{key}[{i}]"),
                format!("{a} is already used by another listener"),
            )),
            Ok(a) => {
                taken.push(a);
                out.push(a);
            }
            Err(_) => errors.push(map.error(
                addr.span(),
                format!("{key}[{i}]"),
                format!(
                    "{:?} is not an address:port (e.g. \"127.0.0.1:8443\")",
                    addr.get_ref()
                ),
            )),
        }
    }
    out
}

fn viewer_protocol(
    value: &Spanned<String>,
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<ViewerProtocol> {
    match value.get_ref().as_str() {
        "allow-all" => Some(ViewerProtocol::AllowAll),
        "redirect-to-https" => Some(ViewerProtocol::RedirectToHttps),
        "https-only" => Some(ViewerProtocol::HttpsOnly),
        other => {
            errors.push(map.error(value.span(), key, format!("{other:?} is not a viewer protocol (allow-all, redirect-to-https or https-only)")));
            None
        }
    }
}

fn distribution(
    raw: &RawDistribution,
    key: &str,
    group_ids: &[&str],
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<Distribution> {
    let before = errors.len();
    let mut hosts = Vec::new();
    for (i, host) in raw.hosts.get_ref().iter().enumerate() {
        let lower = host.get_ref().to_ascii_lowercase();
        let valid = !lower.is_empty()
            && lower.len() <= 253
            && lower
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if valid {
            hosts.push(lower);
        } else {
            errors.push(map.error(
                host.span(),
                format!("{key}.hosts[{i}]"),
                format!(
                    "{:?} is not a host name (no port, no scheme)",
                    host.get_ref()
                ),
            ));
        }
    }
    if raw.hosts.get_ref().is_empty() {
        errors.push(map.error(
            raw.hosts.span(),
            format!("{key}.hosts"),
            "needs at least one host name",
        ));
    }
    let distribution_protocol = raw
        .viewer_protocol
        .as_ref()
        .and_then(|v| viewer_protocol(v, &format!("{key}.viewer_protocol"), map, errors))
        .unwrap_or(ViewerProtocol::AllowAll);
    let mut origins: Vec<Origin> = Vec::new();
    for (i, origin) in raw.origins.iter().enumerate() {
        let okey = format!("{key}.origins[{i}]");
        if let Some(o) = single_origin(origin.get_ref(), &okey, map, base, errors) {
            if origins.iter().any(|known| known.id == o.id) {
                errors.push(map.error(
                    origin.get_ref().id.span(),
                    format!("{okey}.id"),
                    format!("{:?} is used by another origin", o.id),
                ));
            }
            origins.push(o);
        }
    }
    let singles = origins.len();
    // Origins whose own errors are reported: naming one adds no "no origin has id" error.
    let broken: Vec<&str> = raw
        .origins
        .iter()
        .map(|o| o.get_ref().id.get_ref().as_str())
        .filter(|id| !origins.iter().any(|known| known.id == *id))
        .collect();
    for (i, group) in raw.origin_groups.iter().enumerate() {
        let gkey = format!("{key}.origin_groups[{i}]");
        let g = group.get_ref();
        let mut members = Vec::new();
        for member in g.members.get_ref() {
            match origins[..singles].iter().position(|o| o.id == *member) {
                Some(index) => members.push(index),
                None if broken.contains(&member.as_str()) => {}
                None => errors.push(map.error(
                    g.members.span(),
                    format!("{gkey}.members"),
                    format!("no origin has id {member:?}"),
                )),
            }
        }
        if g.members.get_ref().len() < 2 {
            errors.push(map.error(
                g.members.span(),
                format!("{gkey}.members"),
                "an origin group needs at least two members",
            ));
        }
        let failover_status = match &g.failover_status {
            None => DEFAULT_FAILOVER_STATUS.to_vec(),
            Some(list) => list
                .get_ref()
                .iter()
                .filter_map(|s| match u16::try_from(*s) {
                    Ok(s) if (400..=599).contains(&s) => Some(s),
                    _ => {
                        errors.push(map.error(
                            list.span(),
                            format!("{gkey}.failover_status"),
                            format!("{s} is not a 4xx or 5xx status"),
                        ));
                        None
                    }
                })
                .collect(),
        };
        if origins.iter().any(|known| known.id == *g.id.get_ref()) {
            errors.push(map.error(
                g.id.span(),
                format!("{gkey}.id"),
                format!("{:?} is used by another origin or group", g.id.get_ref()),
            ));
        }
        origins.push(Origin {
            id: g.id.get_ref().clone(),
            target: OriginTarget::Group {
                members,
                failover_status,
            },
        });
    }
    let mut behaviors = Vec::new();
    for (i, behavior) in raw.behaviors.iter().enumerate() {
        let bkey = format!("{key}.behaviors[{i}]");
        if let Some(b) = single_behavior(
            behavior.get_ref(),
            &bkey,
            &OriginRefs {
                valid: &origins,
                broken: &broken,
            },
            group_ids,
            distribution_protocol,
            map,
            errors,
        ) {
            behaviors.push(b);
        }
    }
    if raw.behaviors.is_empty() {
        errors.push(map.error(
            raw.id.span(),
            format!("{key}.behaviors"),
            "needs at least one behavior (the last is usually path = \"*\")",
        ));
    }
    let mut custom_errors = Vec::new();
    for (i, custom) in raw.custom_errors.iter().enumerate() {
        let ckey = format!("{key}.custom_errors[{i}]");
        let c = custom.get_ref();
        let status =
            |v: &Spanned<i64>, field: &str, errors: &mut Vec<ConfigError>| match u16::try_from(
                *v.get_ref(),
            ) {
                Ok(s) if (100..=599).contains(&s) => Some(s),
                _ => {
                    errors.push(map.error(
                        v.span(),
                        format!("{ckey}.{field}"),
                        format!("{} is not an HTTP status", v.get_ref()),
                    ));
                    None
                }
            };
        let Some(code) = status(&c.status, "status", errors) else {
            continue;
        };
        let response_status = c
            .response_status
            .as_ref()
            .and_then(|s| status(s, "response_status", errors))
            .unwrap_or(code);
        if !c.path.get_ref().starts_with('/') {
            errors.push(map.error(c.path.span(), format!("{ckey}.path"), "must start with /"));
        }
        custom_errors.push(CustomError {
            status: code,
            path: c.path.get_ref().clone(),
            response_status,
            ttl: c.ttl.as_ref().map(|t| t.get_ref().0),
        });
    }
    let geo_restriction = raw
        .geo_restriction
        .as_ref()
        .and_then(|g| geo_restriction(g, &format!("{key}.geo_restriction"), map, errors));
    let parent = match (&raw.parent, &raw.parent_ca) {
        (Some(parent), ca) => parent_tier::validate(parent, ca.as_ref(), key, map, base, errors),
        (None, Some(ca)) => {
            errors.push(map.error(ca.span(), format!("{key}.parent_ca"), "needs parent"));
            None
        }
        (None, None) => None,
    };
    (errors.len() == before).then(|| Distribution {
        id: raw.id.get_ref().clone(),
        hosts,
        viewer_protocol: distribution_protocol,
        geo_restriction,
        custom_errors,
        origins,
        behaviors,
        parent,
    })
}

fn single_origin(
    raw: &RawOrigin,
    key: &str,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<Origin> {
    let id = raw.id.get_ref().clone();
    let target = match (&raw.url, &raw.dir) {
        (Some(url), None) => OriginTarget::Http(http_origin(raw, url, key, map, errors)?),
        (None, Some(dir)) => {
            let path = base.join(dir.get_ref());
            if !path.is_dir() {
                errors.push(map.error(
                    dir.span(),
                    format!("{key}.dir"),
                    format!("{} is not a readable folder", path.display()),
                ));
                return None;
            }
            OriginTarget::Dir(path)
        }
        _ => {
            errors.push(map.error(
                raw.id.span(),
                key,
                "an origin needs exactly one of url or dir",
            ));
            return None;
        }
    };
    Some(Origin { id, target })
}

/// An http:// or https:// URL and its `scheme://authority/` base; the error says why not
/// (to follow the quoted URL), with `example` as a model.
pub(super) fn http_url(text: &str, example: &str) -> Result<(Uri, Uri), String> {
    let uri: Uri = (text.parse()).map_err(|_| format!("is not a URL (e.g. \"{example}\")"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(format!("needs a scheme and host (e.g. \"{example}\")"));
    };
    if scheme != "http" && scheme != "https" {
        return Err("must be http:// or https://".into());
    }
    let base = Uri::builder()
        .scheme(scheme)
        .authority(authority.as_str())
        .path_and_query("/")
        .build()
        .map_err(|e| format!("is not a usable URL: {e}"))?;
    Ok((base, uri))
}

fn http_origin(
    raw: &RawOrigin,
    url: &Spanned<String>,
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<HttpOrigin> {
    let bad = |why: &str| {
        map.error(
            url.span(),
            format!("{key}.url"),
            format!("{:?} {why}", url.get_ref()),
        )
    };
    let (base, uri) = match http_url(url.get_ref(), "http://127.0.0.1:9000") {
        Ok(split) => split,
        Err(why) => {
            errors.push(bad(&why));
            return None;
        }
    };
    if uri.query().is_some() {
        errors.push(bad("cannot have a query"));
        return None;
    }
    let authority = uri.authority()?;
    let path_prefix = uri.path().trim_end_matches('/').to_string();
    let host = match &raw.host {
        Some(h) => match HeaderValue::from_str(h.get_ref()) {
            Ok(v) => v,
            Err(_) => {
                errors.push(map.error(
                    h.span(),
                    format!("{key}.host"),
                    format!("{:?} is not a valid Host header", h.get_ref()),
                ));
                return None;
            }
        },
        None => HeaderValue::from_str(authority.as_str()).ok()?,
    };
    let mut headers = Vec::new();
    for (name, value) in &raw.headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value.get_ref()),
        ) {
            (Ok(n), Ok(v)) => headers.push((n, v)),
            _ => errors.push(map.error(
                value.span(),
                format!("{key}.headers.{name}"),
                "is not a valid header name and value",
            )),
        }
    }
    let duration = |v: &Option<Spanned<ConfigDuration>>,
                    field: &str,
                    default: Duration,
                    errors: &mut Vec<ConfigError>| match v {
        Some(d) if d.get_ref().0.is_zero() => {
            errors.push(map.error(d.span(), format!("{key}.{field}"), "must be longer than 0s"));
            default
        }
        Some(d) => d.get_ref().0,
        None => default,
    };
    Some(HttpOrigin {
        base,
        path_prefix,
        host,
        connect_timeout: duration(
            &raw.connect_timeout,
            "connect_timeout",
            DEFAULT_CONNECT_TIMEOUT,
            errors,
        ),
        read_timeout: duration(
            &raw.read_timeout,
            "read_timeout",
            DEFAULT_READ_TIMEOUT,
            errors,
        ),
        headers,
    })
}

fn geo_restriction(
    raw: &Spanned<super::raw::RawGeoRestriction>,
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<GeoRestriction> {
    let r = raw.get_ref();
    let allow = match r.mode.get_ref().as_str() {
        "allow" => true,
        "deny" => false,
        other => {
            errors.push(map.error(
                r.mode.span(),
                format!("{key}.mode"),
                format!("{other:?} is not allow or deny"),
            ));
            return None;
        }
    };
    let mut countries = Vec::new();
    for (i, country) in r.countries.iter().enumerate() {
        match Code::new(country.get_ref()).filter(|c| {
            c.as_str().len() == 2 && c.as_str().bytes().all(|b| b.is_ascii_alphabetic())
        }) {
            Some(code) => countries.push(code),
            None => errors.push(map.error(
                country.span(),
                format!("{key}.countries[{i}]"),
                format!(
                    "{:?} is not an ISO 3166-1 alpha-2 country code",
                    country.get_ref()
                ),
            )),
        }
    }
    Some(GeoRestriction {
        allow,
        countries,
        block_unknown: r.block_unknown.unwrap_or(false),
    })
}

/// The origins and groups a behavior may name.
struct OriginRefs<'a> {
    /// Validated, in index order.
    valid: &'a [Origin],
    /// Ids of origins left out for their own (reported) errors.
    broken: &'a [&'a str],
}

fn single_behavior(
    raw: &RawBehavior,
    key: &str,
    origins: &OriginRefs,
    group_ids: &[&str],
    distribution_protocol: ViewerProtocol,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<Behavior> {
    let before = errors.len();
    let pattern = PathPattern::new(raw.path.get_ref())
        .map_err(|e| errors.push(map.error(raw.path.span(), format!("{key}.path"), e.to_string())))
        .ok();
    let origin = origins
        .valid
        .iter()
        .position(|o| o.id == *raw.origin.get_ref());
    if origin.is_none() && !origins.broken.contains(&raw.origin.get_ref().as_str()) {
        errors.push(map.error(
            raw.origin.span(),
            format!("{key}.origin"),
            format!(
                "no origin or origin group has id {:?}",
                raw.origin.get_ref()
            ),
        ));
    }
    let allowed_methods = match &raw.allowed_methods {
        None => vec![Method::GET, Method::HEAD],
        Some(list) => {
            let mut methods = Vec::new();
            for name in list.get_ref() {
                match name.as_str() {
                    "GET" | "HEAD" | "OPTIONS" | "PUT" | "POST" | "PATCH" | "DELETE" => {
                        methods.push(Method::from_bytes(name.as_bytes()).unwrap_or(Method::GET))
                    }
                    other => errors.push(map.error(
                        list.span(),
                        format!("{key}.allowed_methods"),
                        format!(
                            "{other:?} is not one of GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE"
                        ),
                    )),
                }
            }
            if !methods.contains(&Method::GET) || !methods.contains(&Method::HEAD) {
                errors.push(map.error(
                    list.span(),
                    format!("{key}.allowed_methods"),
                    "must include GET and HEAD (as in CloudFront)",
                ));
            }
            methods
        }
    };
    let ttl_of = |v: &Option<Spanned<ConfigDuration>>, default: Duration| {
        v.as_ref().map_or(default, |d| d.get_ref().0)
    };
    let ttl = TtlPolicy {
        min: ttl_of(&raw.min_ttl, DEFAULT_TTLS.min),
        default: ttl_of(&raw.default_ttl, DEFAULT_TTLS.default),
        max: ttl_of(&raw.max_ttl, DEFAULT_TTLS.max),
    };
    if !(ttl.min <= ttl.default && ttl.default <= ttl.max) {
        errors.push(map.error(
            raw.path.span(),
            key,
            format!(
                "TTLs must satisfy min_ttl ≤ default_ttl ≤ max_ttl (got {:?} ≤ {:?} ≤ {:?})",
                ttl.min, ttl.default, ttl.max
            ),
        ));
    }
    let header_names =
        |names: &[String], field: &str, errors: &mut Vec<ConfigError>| -> Vec<HeaderName> {
            names
                .iter()
                .filter_map(|n| {
                    HeaderName::from_bytes(n.as_bytes())
                        .map_err(|_| {
                            errors.push(map.error(
                                raw.path.span(),
                                format!("{key}.{field}"),
                                format!("{n:?} is not a header name"),
                            ))
                        })
                        .ok()
                })
                .collect()
        };
    let cache_key = match &raw.cache_key {
        None => CacheKeyPolicy {
            query_strings: Selection::None,
            headers: Vec::new(),
            cookies: Selection::None,
        },
        Some(k) => {
            let k = k.get_ref();
            let headers = header_names(&k.headers, "cache_key.headers", errors);
            if headers.contains(&http::header::ACCEPT_ENCODING) && raw.compress == Some(true) {
                errors.push(map.error(raw.path.span(), format!("{key}.cache_key.headers"), "Accept-Encoding in the cache key and compress = true conflict (CloudFront normalises it itself)"));
            }
            CacheKeyPolicy {
                query_strings: k.query_strings.clone().unwrap_or(Selection::None),
                headers,
                cookies: k.cookies.clone().unwrap_or(Selection::None),
            }
        }
    };
    let forward: Vec<String> = raw
        .forward_headers
        .iter()
        .map(|h| h.get_ref().clone())
        .collect();
    let forward_headers = header_names(&forward, "forward_headers", errors);
    let viewer_protocol = raw
        .viewer_protocol
        .as_ref()
        .and_then(|v| viewer_protocol(v, &format!("{key}.viewer_protocol"), map, errors))
        .unwrap_or(distribution_protocol);
    if errors.len() > before {
        return None;
    }
    let mut trusted_key_groups = Vec::new();
    if let Some(list) = &raw.trusted_key_groups {
        for id in list.get_ref() {
            match group_ids.iter().position(|g| g == id) {
                Some(index) => trusted_key_groups.push(index),
                None => errors.push(map.error(
                    list.span(),
                    format!("{key}.trusted_key_groups"),
                    format!("no [[cdn.key_groups]] entry has id {id:?}"),
                )),
            }
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(Behavior {
        pattern: pattern?,
        origin: origin?,
        allowed_methods,
        ttl,
        compress: raw.compress.unwrap_or(false),
        cache_key,
        forward_headers,
        viewer_protocol,
        trusted_key_groups,
    })
}
