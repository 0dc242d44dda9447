//! `[dns]`: listeners, limits and zones, validated into ready-to-serve record sets.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::{Name, RData, RecordType};
use ipnet::IpNet;

use super::diag::{ConfigError, SourceMap};
use super::logs::LogConfig;
use super::raw::{RawCidrCollection, RawDns};
use crate::geo::{Code, GeoConfig, Region};
use crate::health::HealthCheckConfig;

mod alias;
mod dnssec;
mod routed;
mod rrl;
mod transfer;
pub(super) mod tsig;
mod update;
mod zone;

pub use dnssec::{Denial, DnssecAlgorithm, RawDnssec, ZoneDnssec, ZskTiming};
pub use rrl::RrlConfig;
pub use transfer::{TransferRule, ZoneTransfer};
pub use tsig::{Secret, TsigKeyConfig};
pub use update::{NamePattern, SerialPolicy, UpdateRule, ZoneUpdate};

pub(super) use routed::{GEO_TARGET_FORMS, geo_target};
use zone::validate_zone;

/// Largest TTL RFC 2181 §8 allows.
const MAX_TTL: i64 = (1 << 31) - 1;
/// TTL of inline records without their own, when the zone gives no `ttl`.
const DEFAULT_ZONE_TTL: u32 = 3600;
/// EDNS payload size we advertise and cap responses at unless configured (DNS flag day 2020).
const DEFAULT_MAX_UDP_PAYLOAD: u16 = 1232;
const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_TCP_MAX_CONNECTIONS: usize = 1024;
/// A busy resolver needs a handful of connections; 32 leaves the other 992 default slots to
/// everyone else.
const DEFAULT_TCP_MAX_PER_CLIENT: usize = 32;

/// Validated `[dns]`.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// UDP and TCP are served on each. Defaults to `127.0.0.1:5353`.
    pub listen: Vec<SocketAddr>,
    /// UDP sockets (SO_REUSEPORT) per address and runtime threads. Defaults to the CPU count.
    pub workers: usize,
    /// Cap on UDP response size even when the requester offers more. Defaults to 1232.
    pub max_udp_payload: u16,
    /// A TCP connection without a complete query for this long is closed. Defaults to 10 s.
    pub tcp_idle_timeout: Duration,
    /// Open TCP connections at most; at the limit the longest-idle one is closed to make room
    /// (a new one is refused only when all are busy). Defaults to 1024.
    pub tcp_max_connections: usize,
    /// TCP connections one client (IPv4 address or IPv6 /64) may hold; more are closed at
    /// once. Defaults to 32.
    pub tcp_max_per_client: usize,
    /// CHAOS TXT answers; `None` refuses the query. Both default to `None`.
    pub chaos: Chaos,
    /// Route on the EDNS Client Subnet address when a query carries one. Defaults to true.
    pub use_client_subnet: bool,
    /// HTTP status listeners: `GET /health-checks`, `GET /metrics`, `POST /reload`.
    pub status_listen: Vec<SocketAddr>,
    /// Bearer token `POST /reload` requires; without one, only loopback peers may reload.
    /// Defaults to none.
    pub status_token: Option<String>,
    /// Reload when the config file or a zone file changes, after 500 ms without further
    /// changes. Defaults to false (reload on SIGHUP or `POST /reload` only).
    pub watch_zones: bool,
    /// `query_log`: a line per answered query. Defaults to off (`None`); fixed at start.
    pub query_log: Option<LogConfig>,
    /// `data_dir`: the journal of dynamic updates (needed when a zone allows updates).
    pub data_dir: Option<PathBuf>,
    /// `rrl`: response rate limiting of UDP answers. Defaults to off (`None`).
    pub rrl: Option<RrlConfig>,
    /// `[[dns.tsig_keys]]`: TSIG keys by which transfers, NOTIFY and updates are signed;
    /// reloadable. Defaults to none.
    pub tsig_keys: Vec<TsigKeyConfig>,
    /// IP-based routing's named CIDR locations.
    pub cidr_collections: Vec<CidrCollection>,
    /// Every zone served, each with its SOA and record sets.
    pub zones: Vec<ZoneData>,
    /// `[geo]`: databases and networks that locate clients.
    pub geo: GeoConfig,
    /// `[[health_checks]]`, in config order (routed sets refer to them by index).
    pub health_checks: Vec<HealthCheckConfig>,
    /// `[[regions]]`, in config order (latency routing's fallback order).
    pub regions: Vec<Region>,
    /// What the check found worth saying that does not stop the config from loading, in
    /// the file's order: `check` prints each as `warning: ...`, and a start or reload logs
    /// it.
    pub warnings: Vec<ConfigError>,
}

/// `[[dns.cidr_collections]]`: named locations, each a list of CIDR blocks.
#[derive(Debug, Clone)]
pub struct CidrCollection {
    pub id: String,
    pub locations: Vec<CidrLocation>,
}

/// One location of a CIDR collection.
#[derive(Debug, Clone)]
pub struct CidrLocation {
    pub name: String,
    pub blocks: Vec<IpNet>,
}

/// What `version.bind`/`version.server` and `id.server`/`hostname.bind` say, if anything.
#[derive(Debug, Clone, Default)]
pub struct Chaos {
    pub version: Option<String>,
    pub id: Option<String>,
}

/// One zone's data: validated, deduplicated, grouped into RRsets.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneData {
    /// The apex, e.g. `home.example.`.
    pub origin: Name,
    /// The SOA serial is the load time, not configured: a reload keeps the previous one while
    /// the zone's data stay the same.
    pub serial_generated: bool,
    /// The master files read for this zone: its `file` and every file that file includes
    /// (`$INCLUDE`) with records in it. `watch_zones` watches them.
    pub files: Vec<PathBuf>,
    /// Every RRset, the SOA included; CNAME exclusivity and NS presence already checked.
    pub rrsets: Vec<RrsetData>,
    /// Routed record sets: several sets under one name and type, one chosen per query.
    pub routed: Vec<RoutedGroupData>,
    /// Who may transfer the zone and whom to notify of changes.
    pub transfer: ZoneTransfer,
    /// Who may update it (RFC 2136) and how updates move the serial.
    pub update: ZoneUpdate,
    /// Signed online when set.
    pub dnssec: Option<ZoneDnssec>,
}

/// All sets of one name and type that share a routing policy (Route 53's "group").
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedGroupData {
    pub name: Name,
    pub rtype: RecordType,
    /// In config order; every member has the same kind of [`RoutingRule`].
    pub members: Vec<RoutedMemberData>,
}

/// One routed record set (`set_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedMemberData {
    pub set_id: String,
    pub ttl: u32,
    pub rdatas: Vec<RData>,
    /// Index into the config's health checks; none means always healthy.
    pub health_check: Option<usize>,
    pub rule: RoutingRule,
}

/// The routing field of a routed set: which policy, and this set's part in it.
#[derive(Debug, Clone, PartialEq)]
pub enum RoutingRule {
    Weighted(u8),
    Failover(FailoverRole),
    /// Index into `[[regions]]`.
    Latency(usize),
    Geo(GeoTarget),
    /// Indices into the collections and their locations; `None` is the `*` default.
    Cidr {
        collection: usize,
        location: Option<usize>,
    },
    Multivalue,
}

/// Failover roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverRole {
    Primary,
    Secondary,
}

/// What a geolocation set covers; codes are upper case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeoTarget {
    /// `country = "*"`: everyone no other set matches.
    Default,
    Continent(Code),
    Country(Code),
    Subdivision {
        country: Code,
        subdivision: Code,
    },
}

/// Names the routed records may refer to, resolved before the zones are checked.
pub(super) struct RoutingRefs<'a> {
    pub health_checks: &'a [HealthCheckConfig],
    /// Ids of health checks left out for their own (reported) errors: naming one is no
    /// further error.
    pub broken_health_checks: &'a [&'a str],
    pub regions: &'a [Region],
    pub geo: &'a GeoConfig,
    /// `[[edge_groups]]` that alias records name.
    pub edge_groups: &'a [super::edges::EdgeGroup],
}

/// Records of one owner name and type. TTL is the lowest of the records given (RFC 2181 §5.2
/// says they must agree; the lowest is the safe reading when they do not).
#[derive(Debug, Clone, PartialEq)]
pub struct RrsetData {
    pub name: Name,
    pub rtype: RecordType,
    pub ttl: u32,
    pub rdatas: Vec<RData>,
}

/// Where a record came from, so later checks can point at it.
#[derive(Clone)]
pub(super) enum Origin {
    Inline {
        span: Range<usize>,
        key_path: String,
    },
    File {
        file: PathBuf,
        line: usize,
    },
}

pub(super) struct PendingRecord {
    name: Name,
    rtype: RecordType,
    ttl: u32,
    rdata: RData,
    origin: Origin,
}

/// Checks `[dns]` and loads its zones, pushing every problem onto `errors`.
pub(super) fn validate(
    raw: RawDns,
    refs: &RoutingRefs,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> DnsConfig {
    let mut listen = addresses(&raw.listen, "dns.listen", &[], map, errors);
    if raw.listen.is_empty() {
        listen.push(SocketAddr::from(([127, 0, 0, 1], 5353)));
    }
    let status_listen = addresses(
        &raw.status_listen,
        "dns.status_listen",
        &listen,
        map,
        errors,
    );
    let cidr_collections = cidr_collections(&raw.cidr_collections, map, errors);
    let tsig_keys = tsig::validate(&raw.tsig_keys, map, base, errors);
    let cpus = crate::cli::available_cpus();
    let workers =
        bounded(&raw.workers, 1..=256, "dns.workers", map, errors).map_or(cpus, |n| n as usize);
    let max_udp_payload = bounded(
        &raw.max_udp_payload,
        512..=65535,
        "dns.max_udp_payload",
        map,
        errors,
    )
    .map_or(DEFAULT_MAX_UDP_PAYLOAD, |n| n as u16);
    let tcp_max_connections = bounded(
        &raw.tcp_max_connections,
        1..=1_000_000,
        "dns.tcp_max_connections",
        map,
        errors,
    )
    .map_or(DEFAULT_TCP_MAX_CONNECTIONS, |n| n as usize);
    let tcp_max_per_client = bounded(
        &raw.tcp_max_per_client,
        1..=1_000_000,
        "dns.tcp_max_per_client",
        map,
        errors,
    )
    .map_or(DEFAULT_TCP_MAX_PER_CLIENT, |n| n as usize);
    let tcp_idle_timeout = match &raw.tcp_idle_timeout {
        Some(t) if t.get_ref().0.is_zero() => {
            errors.push(map.error(t.span(), "dns.tcp_idle_timeout", "must be longer than 0s"));
            DEFAULT_TCP_IDLE_TIMEOUT
        }
        Some(t) => t.get_ref().0,
        None => DEFAULT_TCP_IDLE_TIMEOUT,
    };
    let status_token = status_token(raw.status_token.as_ref(), map, errors);
    let query_log = raw
        .query_log
        .as_ref()
        .and_then(|log| super::logs::validate(log, "dns.query_log", map, base, errors));
    let chaos = raw.chaos.map_or_else(Chaos::default, |c| Chaos {
        version: c.version.map(|v| v.into_inner()),
        id: c.id.map(|v| v.into_inner()),
    });
    let rrl = raw.rrl.as_ref().and_then(|r| rrl::validate(r, map, errors));

    let data_dir = raw.data_dir.as_ref().map(|dir| base.join(dir.get_ref()));
    let key_names: Vec<Name> = tsig_keys.iter().map(|k| k.name.clone()).collect();
    let ctx = ZoneContext {
        refs,
        collections: &cidr_collections,
        tsig_keys: &key_names,
        data_dir: data_dir.as_deref(),
        map,
        base,
    };
    let mut zones: Vec<ZoneData> = Vec::new();
    let mut warnings = Vec::new();
    for (zi, zone) in raw.zones.into_iter().enumerate() {
        let span = zone.span();
        if let Some(data) = validate_zone(zone.into_inner(), zi, &ctx, errors, &mut warnings) {
            if zones.iter().any(|z| z.origin == data.origin) {
                errors.push(map.error(
                    span,
                    format!("dns.zones[{zi}]"),
                    format!("zone {} is defined twice", data.origin),
                ));
            } else {
                zones.push(data);
            }
        }
    }
    DnsConfig {
        listen,
        workers,
        max_udp_payload,
        tcp_idle_timeout,
        tcp_max_connections,
        tcp_max_per_client,
        chaos,
        use_client_subnet: raw.use_client_subnet.unwrap_or(true),
        status_listen,
        status_token,
        watch_zones: raw.watch_zones.unwrap_or(false),
        query_log,
        data_dir,
        rrl,
        tsig_keys,
        cidr_collections,
        zones,
        geo: GeoConfig::default(),
        health_checks: Vec::new(),
        regions: Vec::new(),
        warnings,
    }
}

/// What checking one zone needs besides the zone itself.
pub(super) struct ZoneContext<'a> {
    refs: &'a RoutingRefs<'a>,
    collections: &'a [CidrCollection],
    /// Names of `[[dns.tsig_keys]]`, which `key:NAME` entries must name.
    tsig_keys: &'a [Name],
    /// `[dns] data_dir`: zones may allow updates, and signed zones keep keys under it.
    data_dir: Option<&'a Path>,
    map: &'a SourceMap<'a>,
    base: &'a Path,
}

/// `dns.status_token`: long enough not to be guessed, and sendable in a header as is.
fn status_token(
    raw: Option<&toml::Spanned<String>>,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    let token = raw?;
    let text = token.get_ref();
    if text.len() < 8 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        errors.push(map.error(
            token.span(),
            "dns.status_token",
            "must be at least 8 characters, printable ASCII without spaces",
        ));
        return None;
    }
    Some(text.clone())
}

/// Socket addresses, each once, none also in `taken`.
fn addresses(
    raw: &[toml::Spanned<String>],
    key: &str,
    taken: &[SocketAddr],
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for (i, addr) in raw.iter().enumerate() {
        match addr.get_ref().parse::<SocketAddr>() {
            Ok(a) if out.contains(&a) || (taken.contains(&a) && a.port() != 0) => {
                errors.push(map.error(
                    addr.span(),
                    format!("{key}[{i}]"),
                    format!("{a} is already used by another listener"),
                ))
            }
            Ok(a) => out.push(a),
            Err(_) => errors.push(map.error(
                addr.span(),
                format!("{key}[{i}]"),
                format!(
                    "{:?} is not an address:port (e.g. \"127.0.0.1:5353\" or \"[::1]:5353\")",
                    addr.get_ref()
                ),
            )),
        }
    }
    out
}

fn cidr_collections(
    raw: &[toml::Spanned<RawCidrCollection>],
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Vec<CidrCollection> {
    let mut collections: Vec<CidrCollection> = Vec::new();
    for (i, collection) in raw.iter().enumerate() {
        let key = format!("dns.cidr_collections[{i}]");
        let c = collection.get_ref();
        if collections.iter().any(|known| known.id == *c.id.get_ref()) {
            errors.push(map.error(
                c.id.span(),
                format!("{key}.id"),
                format!("{:?} is used by another CIDR collection", c.id.get_ref()),
            ));
            continue;
        }
        let mut locations = Vec::new();
        for (name, blocks) in c.locations.get_ref() {
            if name == "*" || name.is_empty() {
                errors.push(map.error(c.locations.span(), format!("{key}.locations"), format!("{name:?} cannot name a location (\"*\" is the default every record set may use)")));
                continue;
            }
            let mut parsed = Vec::new();
            for (bi, block) in blocks.iter().enumerate() {
                match block.get_ref().parse::<IpNet>() {
                    Ok(net) => parsed.push(net.trunc()),
                    Err(_) => errors.push(map.error(
                        block.span(),
                        format!("{key}.locations.{name}[{bi}]"),
                        format!(
                            "{:?} is not a CIDR block (e.g. \"10.8.0.0/24\")",
                            block.get_ref()
                        ),
                    )),
                }
            }
            locations.push(CidrLocation {
                name: name.clone(),
                blocks: parsed,
            });
        }
        collections.push(CidrCollection {
            id: c.id.get_ref().clone(),
            locations,
        });
    }
    collections
}

/// An optional integer that must lie in `range`.
pub(super) fn bounded(
    value: &Option<toml::Spanned<i64>>,
    range: std::ops::RangeInclusive<i64>,
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<i64> {
    let v = value.as_ref()?;
    if range.contains(v.get_ref()) {
        Some(*v.get_ref())
    } else {
        let (lo, hi) = range.into_inner();
        errors.push(map.error(
            v.span(),
            key,
            format!("{} is out of range (expected {lo} to {hi})", v.get_ref()),
        ));
        None
    }
}
