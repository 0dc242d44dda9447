//! `[dns]`: listeners, limits and zones, validated into ready-to-serve record sets.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{LowerName, Name, RData, RecordType};
use ipnet::IpNet;

use super::diag::{ConfigError, SourceMap};
use super::raw::{RawCidrCollection, RawDns, RawRecord, RawSoa, RawZone};
use crate::dns::{rdata, zonefile};
use crate::geo::{Code, GeoConfig, Region};
use crate::health::HealthCheckConfig;

/// Largest TTL RFC 2181 §8 allows.
const MAX_TTL: i64 = (1 << 31) - 1;
/// TTL of inline records without their own, when the zone gives no `ttl`.
const DEFAULT_ZONE_TTL: u32 = 3600;
/// EDNS payload size we advertise and cap responses at unless configured (DNS flag day 2020).
const DEFAULT_MAX_UDP_PAYLOAD: u16 = 1232;
const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_TCP_MAX_CONNECTIONS: usize = 1024;

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
    /// Connections beyond this are closed at once. Defaults to 1024.
    pub tcp_max_connections: usize,
    /// CHAOS TXT answers; `None` refuses the query. Both default to `None`.
    pub chaos: Chaos,
    /// Route on the EDNS Client Subnet address when a query carries one. Defaults to true.
    pub use_client_subnet: bool,
    /// HTTP status listeners: `GET /health-checks`, `GET /metrics`.
    pub status_listen: Vec<SocketAddr>,
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
#[derive(Debug, Clone)]
pub struct ZoneData {
    /// The apex, e.g. `home.example.`.
    pub origin: Name,
    /// Every RRset, the SOA included; CNAME exclusivity and NS presence already checked.
    pub rrsets: Vec<RrsetData>,
    /// Routed record sets: several sets under one name and type, one chosen per query.
    pub routed: Vec<RoutedGroupData>,
}

/// All sets of one name and type that share a routing policy (Route 53's "group").
#[derive(Debug, Clone)]
pub struct RoutedGroupData {
    pub name: Name,
    pub rtype: RecordType,
    /// In config order; every member has the same kind of [`RoutingRule`].
    pub members: Vec<RoutedMemberData>,
}

/// One routed record set (`set_id`).
#[derive(Debug, Clone)]
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
    pub regions: &'a [Region],
    pub geo: &'a GeoConfig,
}

/// Records of one owner name and type. TTL is the lowest of the records given (RFC 2181 §5.2
/// says they must agree; the lowest is the safe reading when they do not).
#[derive(Debug, Clone)]
pub struct RrsetData {
    pub name: Name,
    pub rtype: RecordType,
    pub ttl: u32,
    pub rdatas: Vec<RData>,
}

/// Where a record came from, so later checks can point at it.
#[derive(Clone)]
enum Origin {
    Inline {
        span: Range<usize>,
        key_path: String,
    },
    File {
        file: PathBuf,
        line: usize,
    },
}

struct PendingRecord {
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
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
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
    let tcp_idle_timeout = match &raw.tcp_idle_timeout {
        Some(t) if t.get_ref().0.is_zero() => {
            errors.push(map.error(t.span(), "dns.tcp_idle_timeout", "must be longer than 0s"));
            DEFAULT_TCP_IDLE_TIMEOUT
        }
        Some(t) => t.get_ref().0,
        None => DEFAULT_TCP_IDLE_TIMEOUT,
    };
    let chaos = raw.chaos.map_or_else(Chaos::default, |c| Chaos {
        version: c.version.map(|v| v.into_inner()),
        id: c.id.map(|v| v.into_inner()),
    });

    let ctx = ZoneContext {
        refs,
        collections: &cidr_collections,
        map,
        base,
    };
    let mut zones: Vec<ZoneData> = Vec::new();
    for (zi, zone) in raw.zones.into_iter().enumerate() {
        let span = zone.span();
        if let Some(data) = validate_zone(zone.into_inner(), zi, &ctx, errors) {
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
        chaos,
        use_client_subnet: raw.use_client_subnet.unwrap_or(true),
        status_listen,
        cidr_collections,
        zones,
        geo: GeoConfig::default(),
        health_checks: Vec::new(),
        regions: Vec::new(),
    }
}

/// What checking one zone needs besides the zone itself.
struct ZoneContext<'a> {
    refs: &'a RoutingRefs<'a>,
    collections: &'a [CidrCollection],
    map: &'a SourceMap<'a>,
    base: &'a Path,
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
fn bounded(
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

fn validate_zone(
    raw: RawZone,
    zi: usize,
    ctx: &ZoneContext,
    errors: &mut Vec<ConfigError>,
) -> Option<ZoneData> {
    let (map, base) = (ctx.map, ctx.base);
    let key = format!("dns.zones[{zi}]");
    let origin = match Name::from_ascii(raw.name.get_ref()) {
        Ok(name) => name.to_lowercase().append_domain(&Name::root()).ok()?,
        Err(e) => {
            errors.push(map.error(
                raw.name.span(),
                format!("{key}.name"),
                format!("{:?} is not a domain name: {e}", raw.name.get_ref()),
            ));
            return None;
        }
    };
    let zone_ttl = match &raw.ttl {
        Some(t) => ttl(t, &format!("{key}.ttl"), map, errors).unwrap_or(DEFAULT_ZONE_TTL),
        None => DEFAULT_ZONE_TTL,
    };
    let errors_before = errors.len();
    let mut records = Vec::new();
    let mut routed: Vec<(RoutedGroupData, Origin)> = Vec::new();
    if let Some(file) = &raw.file {
        let path = base.join(file.get_ref());
        match zonefile::load_zone_file(&path, &origin, Some(zone_ttl)) {
            Ok(loaded) => records.extend(loaded.into_iter().map(|r| PendingRecord {
                name: r.name,
                rtype: r.rtype,
                ttl: r.ttl,
                rdata: r.rdata,
                origin: Origin::File {
                    file: r.file,
                    line: r.line,
                },
            })),
            Err(file_errors) => errors.extend(file_errors.into_iter().map(|e| ConfigError {
                file: e.file,
                line: e.line,
                col: 0,
                key_path: format!("{key}.file"),
                message: e.message,
            })),
        }
    }
    for (ri, record) in raw.records.iter().enumerate() {
        let record_key = format!("{key}.records[{ri}]");
        if is_routed(record.get_ref()) {
            routed_record(
                record,
                &record_key,
                &origin,
                zone_ttl,
                ctx,
                errors,
                &mut routed,
            );
        } else {
            inline_record(
                record,
                &record_key,
                &origin,
                zone_ttl,
                map,
                errors,
                &mut records,
            );
        }
    }
    if let Some(soa) = &raw.soa {
        records.retain(|r| r.rtype != RecordType::SOA);
        let (rdata, soa_ttl) = inline_soa(
            soa.get_ref(),
            &origin,
            zone_ttl,
            &format!("{key}.soa"),
            map,
            errors,
        );
        records.push(PendingRecord {
            name: origin.clone(),
            rtype: RecordType::SOA,
            ttl: soa_ttl,
            rdata,
            origin: Origin::Inline {
                span: soa.span(),
                key_path: format!("{key}.soa"),
            },
        });
    }
    if errors.len() > errors_before {
        return None;
    }
    let zone_span = raw.name.span();
    let rrsets = group_and_check(
        records, &routed, &origin, zone_ttl, map, &key, zone_span, errors,
    )?;
    Some(ZoneData {
        origin,
        rrsets,
        routed: routed.into_iter().map(|(group, _)| group).collect(),
    })
}

fn ttl(
    value: &toml::Spanned<i64>,
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<u32> {
    bounded(&Some(value.clone()), 0..=MAX_TTL, key, map, errors).map(|t| t as u32)
}

/// Resolves a record name as written in the TOML: `@`, relative, or absolute with a trailing dot.
fn owner_name(text: &str, origin: &Name) -> Result<Name, String> {
    if text == "@" {
        return Ok(origin.clone());
    }
    let name = Name::from_ascii(text).map_err(|e| format!("{text:?} is not a domain name: {e}"))?;
    if name.is_fqdn() {
        Ok(name)
    } else {
        name.append_domain(origin)
            .map_err(|e| format!("{text:?} is too long inside {origin}: {e}"))
    }
}

fn inline_record(
    record: &toml::Spanned<RawRecord>,
    key: &str,
    origin: &Name,
    zone_ttl: u32,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
    out: &mut Vec<PendingRecord>,
) {
    let raw = record.get_ref();
    let name = match owner_name(raw.name.get_ref(), origin) {
        Ok(name) => name,
        Err(message) => {
            return errors.push(map.error(raw.name.span(), format!("{key}.name"), message));
        }
    };
    if !origin.zone_of(&name) {
        return errors.push(map.error(
            raw.name.span(),
            format!("{key}.name"),
            format!("{name} is outside zone {origin}"),
        ));
    }
    let rtype = match rdata::parse_record_type(raw.rtype.get_ref()) {
        Ok(t) => t,
        Err(e) => {
            return errors.push(map.error(raw.rtype.span(), format!("{key}.type"), e.to_string()));
        }
    };
    let record_ttl = match &raw.ttl {
        Some(t) => match ttl(t, &format!("{key}.ttl"), map, errors) {
            Some(t) => t,
            None => return,
        },
        None => zone_ttl,
    };
    if raw.values.is_empty() {
        return errors.push(map.error(
            record.span(),
            format!("{key}.values"),
            "a record set needs at least one value",
        ));
    }
    for (vi, value) in raw.values.iter().enumerate() {
        match rdata::parse_rdata(rtype, value.get_ref(), origin) {
            Ok(rdata) => out.push(PendingRecord {
                name: name.clone(),
                rtype,
                ttl: record_ttl,
                rdata,
                origin: Origin::Inline {
                    span: value.span(),
                    key_path: format!("{key}.values[{vi}]"),
                },
            }),
            Err(e) => {
                errors.push(map.error(value.span(), format!("{key}.values[{vi}]"), e.to_string()))
            }
        }
    }
}

/// The zone's SOA from `soa = {...}`: unset fields default to what a generated SOA would hold.
fn inline_soa(
    raw: &RawSoa,
    origin: &Name,
    zone_ttl: u32,
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> (RData, u32) {
    let mut name_field =
        |field: &Option<toml::Spanned<String>>, what: &str, default: &str| -> Name {
            let fallback = || owner_name(default, origin).unwrap_or_else(|_| origin.clone());
            match field {
                Some(v) => owner_name(v.get_ref(), origin).unwrap_or_else(|message| {
                    errors.push(map.error(v.span(), format!("{key}.{what}"), message));
                    fallback()
                }),
                None => fallback(),
            }
        };
    let mname = name_field(&raw.mname, "mname", "ns1");
    let rname = name_field(&raw.rname, "rname", "hostmaster");
    let mut seconds = |field: &Option<toml::Spanned<super::units::ConfigDuration>>,
                       what: &str,
                       default: u32|
     -> u32 {
        match field {
            Some(v) => match u32::try_from(v.get_ref().0.as_secs()) {
                Ok(s) if i64::from(s) <= MAX_TTL => s,
                _ => {
                    errors.push(map.error(
                        v.span(),
                        format!("{key}.{what}"),
                        "is longer than 2^31-1 seconds",
                    ));
                    default
                }
            },
            None => default,
        }
    };
    let refresh = seconds(&raw.refresh, "refresh", 3600);
    let retry = seconds(&raw.retry, "retry", 900);
    let expire = seconds(&raw.expire, "expire", 1_209_600);
    let minimum = seconds(&raw.minimum, "minimum", 300);
    let serial = match &raw.serial {
        Some(s) => u32::try_from(*s.get_ref()).unwrap_or_else(|_| {
            errors.push(map.error(
                s.span(),
                format!("{key}.serial"),
                format!("{} is not a serial (0 to 4294967295)", s.get_ref()),
            ));
            0
        }),
        None => generated_serial(),
    };
    let soa_ttl = raw
        .ttl
        .as_ref()
        .and_then(|t| ttl(t, &format!("{key}.ttl"), map, errors))
        .unwrap_or(zone_ttl);
    let soa = SOA::new(
        mname,
        rname,
        serial,
        refresh as i32,
        retry as i32,
        expire as i32,
        minimum,
    );
    (RData::SOA(soa), soa_ttl)
}

/// Serial for a generated SOA: the load time in Unix seconds (Knot's "unixtime" policy), so a
/// restart with changed data never goes backwards.
fn generated_serial() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs() as u32)
}

/// Groups records into RRsets and checks what only the whole zone can tell.
#[allow(clippy::too_many_arguments)]
fn group_and_check(
    records: Vec<PendingRecord>,
    routed: &[(RoutedGroupData, Origin)],
    origin: &Name,
    zone_ttl: u32,
    map: &SourceMap,
    key: &str,
    zone_span: Range<usize>,
    errors: &mut Vec<ConfigError>,
) -> Option<Vec<RrsetData>> {
    let error_at = |origin: &Origin, message: String| match origin {
        Origin::Inline { span, key_path } => map.error(span.clone(), key_path.clone(), message),
        Origin::File { file, line } => ConfigError {
            file: file.clone(),
            line: *line,
            col: 0,
            key_path: format!("{key}.file"),
            message,
        },
    };
    let errors_before = errors.len();
    let mut sets: BTreeMap<(LowerName, u16), (RrsetData, Origin)> = BTreeMap::new();
    let mut types_at: HashMap<LowerName, Vec<(RecordType, Origin)>> = HashMap::new();
    for record in records {
        if record.rtype == RecordType::SOA && record.name != *origin {
            errors.push(error_at(
                &record.origin,
                format!("SOA at {} is not at the zone apex {origin}", record.name),
            ));
            continue;
        }
        if matches!(record.rtype, RecordType::DNAME) {
            errors.push(error_at(
                &record.origin,
                "DNAME records are not supported".to_string(),
            ));
            continue;
        }
        let lower = LowerName::new(&record.name);
        let entry = sets
            .entry((lower.clone(), u16::from(record.rtype)))
            .or_insert_with(|| {
                types_at
                    .entry(lower)
                    .or_default()
                    .push((record.rtype, record.origin.clone()));
                (
                    RrsetData {
                        name: record.name.clone(),
                        rtype: record.rtype,
                        ttl: record.ttl,
                        rdatas: Vec::new(),
                    },
                    record.origin.clone(),
                )
            });
        entry.0.ttl = entry.0.ttl.min(record.ttl);
        if !entry.0.rdatas.contains(&record.rdata) {
            entry.0.rdatas.push(record.rdata);
        }
    }
    for (group, group_origin) in routed {
        let lower = LowerName::new(&group.name);
        if sets.contains_key(&(lower.clone(), u16::from(group.rtype))) {
            errors.push(error_at(group_origin, format!("{} {} has both plain and routed record sets; all sets of one name and type use one routing policy", group.name, rdata::record_type_name(group.rtype))));
        }
        types_at
            .entry(lower)
            .or_default()
            .push((group.rtype, group_origin.clone()));
    }
    for ((_, _), (set, set_origin)) in &sets {
        if matches!(set.rtype, RecordType::SOA | RecordType::CNAME) && set.rdatas.len() > 1 {
            errors.push(error_at(
                set_origin,
                format!(
                    "{} has {} {} records; only one is allowed",
                    set.name,
                    set.rdatas.len(),
                    set.rtype
                ),
            ));
        }
    }
    for (name, types) in &types_at {
        let Some((_, cname_origin)) = types.iter().find(|(t, _)| *t == RecordType::CNAME) else {
            continue;
        };
        let others: Vec<String> = types
            .iter()
            .filter(|(t, _)| *t != RecordType::CNAME)
            .map(|(t, _)| rdata::record_type_name(*t))
            .collect();
        if !others.is_empty() {
            errors.push(error_at(
                cname_origin,
                format!(
                    "CNAME at {name} cannot stand beside other data ({})",
                    others.join(", ")
                ),
            ));
        }
    }
    let apex = LowerName::new(origin);
    if !sets.contains_key(&(apex.clone(), u16::from(RecordType::NS))) {
        errors.push(map.error(
            zone_span.clone(),
            format!("{key}.name"),
            format!("zone {origin} has no NS records at its apex; add e.g. {{ name = \"@\", type = \"NS\", values = [\"ns1.{origin}\"] }}"),
        ));
    }
    if errors.len() > errors_before {
        return None;
    }
    if !sets.contains_key(&(apex.clone(), u16::from(RecordType::SOA))) {
        let (rdata, ttl) = generated_soa(origin, &sets, zone_ttl);
        sets.insert(
            (apex, u16::from(RecordType::SOA)),
            (
                RrsetData {
                    name: origin.clone(),
                    rtype: RecordType::SOA,
                    ttl,
                    rdatas: vec![rdata],
                },
                Origin::Inline {
                    span: zone_span,
                    key_path: key.to_string(),
                },
            ),
        );
    }
    Some(sets.into_values().map(|(set, _)| set).collect())
}

/// An SOA for zones that give none: the first apex NS as primary, `hostmaster.<zone>` as
/// contact, and common timers (refresh 1h, retry 15m, expire 14d, minimum 5m).
fn generated_soa(
    origin: &Name,
    sets: &BTreeMap<(LowerName, u16), (RrsetData, Origin)>,
    zone_ttl: u32,
) -> (RData, u32) {
    let mname = sets
        .get(&(LowerName::new(origin), u16::from(RecordType::NS)))
        .and_then(|(set, _)| match set.rdatas.first() {
            Some(RData::NS(ns)) => Some(ns.0.clone()),
            _ => None,
        })
        .unwrap_or_else(|| origin.clone());
    let rname = Name::from_ascii("hostmaster")
        .ok()
        .and_then(|n| n.append_domain(origin).ok())
        .unwrap_or_else(|| origin.clone());
    (
        RData::SOA(SOA::new(
            mname,
            rname,
            generated_serial(),
            3600,
            900,
            1_209_600,
            300,
        )),
        zone_ttl,
    )
}

/// A record set with `set_id` or any routing field is routed.
fn is_routed(raw: &RawRecord) -> bool {
    raw.set_id.is_some()
        || raw.health_check.is_some()
        || raw.weight.is_some()
        || raw.failover.is_some()
        || raw.region.is_some()
        || raw.geo.is_some()
        || raw.cidr.is_some()
        || raw.multivalue.is_some()
}

/// Checks one routed set and adds it to its name+type group.
fn routed_record(
    record: &toml::Spanned<RawRecord>,
    key: &str,
    origin: &Name,
    zone_ttl: u32,
    ctx: &ZoneContext,
    errors: &mut Vec<ConfigError>,
    groups: &mut Vec<(RoutedGroupData, Origin)>,
) {
    let map = ctx.map;
    let raw = record.get_ref();
    let before = errors.len();
    let mut plain = Vec::new();
    inline_record(record, key, origin, zone_ttl, map, errors, &mut plain);
    let Some(set_id) = &raw.set_id else {
        errors.push(map.error(
            record.span(),
            format!("{key}.set_id"),
            "routed record sets need a set_id (unique among the sets of this name and type)",
        ));
        return;
    };
    let rule = routing_rule(raw, key, ctx, errors);
    let health_check = raw.health_check.as_ref().and_then(|h| {
        let found = ctx
            .refs
            .health_checks
            .iter()
            .position(|c| c.id == *h.get_ref());
        if found.is_none() {
            errors.push(map.error(
                h.span(),
                format!("{key}.health_check"),
                format!("no health check has id {:?}", h.get_ref()),
            ));
        }
        found
    });
    let (Some(rule), Some(first)) = (rule, plain.first()) else {
        return;
    };
    if errors.len() > before {
        return;
    }
    let (name, rtype) = (first.name.clone(), first.rtype);
    if matches!(rtype, RecordType::NS | RecordType::SOA) {
        errors.push(map.error(
            raw.rtype.span(),
            format!("{key}.type"),
            format!(
                "{} record sets cannot be routed",
                rdata::record_type_name(rtype)
            ),
        ));
        return;
    }
    if rule == RoutingRule::Multivalue && rtype == RecordType::CNAME {
        errors.push(map.error(
            raw.rtype.span(),
            format!("{key}.type"),
            "multivalue answers cannot be CNAME (as in Route 53)",
        ));
        return;
    }
    if rtype == RecordType::CNAME && plain.len() > 1 {
        errors.push(map.error(
            record.span(),
            format!("{key}.values"),
            "a CNAME record set holds one value",
        ));
        return;
    }
    let member = RoutedMemberData {
        set_id: set_id.get_ref().clone(),
        ttl: first.ttl,
        rdatas: plain.into_iter().map(|r| r.rdata).collect(),
        health_check,
        rule,
    };
    let lower = LowerName::new(&name);
    let origin_of_record = Origin::Inline {
        span: record.span(),
        key_path: key.to_string(),
    };
    let Some((group, _)) = groups
        .iter_mut()
        .find(|(g, _)| g.rtype == rtype && LowerName::new(&g.name) == lower)
    else {
        if let RoutingRule::Latency(_) | RoutingRule::Geo(_) = member.rule {
            require_location_source(&member.rule, key, record.span(), ctx, errors);
        }
        groups.push((
            RoutedGroupData {
                name,
                rtype,
                members: vec![member],
            },
            origin_of_record,
        ));
        return;
    };
    if let Some(conflict) = member_conflict(group, &member, ctx) {
        errors.push(map.error(record.span(), key.to_string(), conflict));
        return;
    }
    group.members.push(member);
}

/// The one routing field of a routed set.
fn routing_rule(
    raw: &RawRecord,
    key: &str,
    ctx: &ZoneContext,
    errors: &mut Vec<ConfigError>,
) -> Option<RoutingRule> {
    let map = ctx.map;
    let fields = [
        raw.weight.as_ref().map(|v| ("weight", v.span())),
        raw.failover.as_ref().map(|v| ("failover", v.span())),
        raw.region.as_ref().map(|v| ("region", v.span())),
        raw.geo.as_ref().map(|v| ("geo", v.span())),
        raw.cidr.as_ref().map(|v| ("cidr", v.span())),
        raw.multivalue.as_ref().map(|v| ("multivalue", v.span())),
    ];
    let present: Vec<(&str, std::ops::Range<usize>)> = fields.into_iter().flatten().collect();
    let [(field, span)] = present.as_slice() else {
        let message = if present.is_empty() {
            "a routed record set needs exactly one of weight, failover, region, geo, cidr or multivalue".to_string()
        } else {
            let names: Vec<&str> = present.iter().map(|(n, _)| *n).collect();
            format!(
                "a routed record set has exactly one routing field, not {}",
                names.join(" and ")
            )
        };
        errors.push(map.error(raw.name.span(), key, message));
        return None;
    };
    let key = format!("{key}.{field}");
    let mut fail = |message: String| {
        errors.push(map.error(span.clone(), key.clone(), message));
        None
    };
    match *field {
        "weight" => {
            let weight = *raw.weight.as_ref()?.get_ref();
            match u8::try_from(weight) {
                Ok(w) => Some(RoutingRule::Weighted(w)),
                Err(_) => fail(format!("{weight} is out of range (expected 0 to 255)")),
            }
        }
        "failover" => match raw.failover.as_ref()?.get_ref().to_ascii_lowercase().as_str() {
            "primary" => Some(RoutingRule::Failover(FailoverRole::Primary)),
            "secondary" => Some(RoutingRule::Failover(FailoverRole::Secondary)),
            other => fail(format!("{other:?} is not a failover role (expected \"primary\" or \"secondary\")")),
        },
        "region" => {
            let region = raw.region.as_ref()?.get_ref();
            match ctx.refs.regions.iter().position(|r| r.id == *region) {
                Some(i) => Some(RoutingRule::Latency(i)),
                None => fail(format!("no [[regions]] entry has id {region:?}")),
            }
        }
        "geo" => geo_target(raw.geo.as_ref()?.get_ref()).map(RoutingRule::Geo).or_else(|| {
            fail("expected { continent = \"EU\" }, { country = \"KR\" }, { country = \"US\", subdivision = \"CA\" } or { country = \"*\" } (the default)".to_string())
        }),
        "cidr" => {
            let target = raw.cidr.as_ref()?.get_ref();
            let Some(collection) = ctx.collections.iter().position(|c| c.id == target.collection) else {
                return fail(format!("no [[dns.cidr_collections]] entry has id {:?}", target.collection));
            };
            if target.location == "*" {
                return Some(RoutingRule::Cidr { collection, location: None });
            }
            match ctx.collections[collection].locations.iter().position(|l| l.name == target.location) {
                Some(location) => Some(RoutingRule::Cidr { collection, location: Some(location) }),
                None => fail(format!("collection {:?} has no location {:?} (use \"*\" for the default)", target.collection, target.location)),
            }
        }
        _ => match raw.multivalue.as_ref()?.get_ref() {
            true => Some(RoutingRule::Multivalue),
            false => fail("multivalue = false is not a routing policy; leave set_id out for a plain record set".to_string()),
        },
    }
}

fn geo_target(raw: &super::raw::RawGeoTarget) -> Option<GeoTarget> {
    let code = |s: &Option<String>| s.as_deref().map(Code::new);
    let is_country =
        |c: &Code| c.as_str().len() == 2 && c.as_str().bytes().all(|b| b.is_ascii_alphabetic());
    match (
        code(&raw.continent),
        raw.country.as_deref(),
        code(&raw.subdivision),
    ) {
        (Some(Some(continent)), None, None)
            if super::geo::CONTINENTS.contains(&continent.as_str()) =>
        {
            Some(GeoTarget::Continent(continent))
        }
        (None, Some("*"), None) => Some(GeoTarget::Default),
        (None, Some(country), None) => Code::new(country)
            .filter(is_country)
            .map(GeoTarget::Country),
        (None, Some(country), Some(Some(subdivision))) => Code::new(country)
            .filter(is_country)
            .map(|country| GeoTarget::Subdivision {
                country,
                subdivision,
            }),
        _ => None,
    }
}

/// Why `member` cannot join `group`, if it cannot.
fn member_conflict(
    group: &RoutedGroupData,
    member: &RoutedMemberData,
    ctx: &ZoneContext,
) -> Option<String> {
    let first = &group.members[0].rule;
    if std::mem::discriminant(first) != std::mem::discriminant(&member.rule) {
        return Some(format!(
            "{} {} mixes routing policies ({} and {}); all sets of one name and type use one policy",
            group.name,
            rdata::record_type_name(group.rtype),
            policy_name(first),
            policy_name(&member.rule)
        ));
    }
    if group.members.iter().any(|m| m.set_id == member.set_id) {
        return Some(format!(
            "set_id {:?} is used twice for {} {}",
            member.set_id,
            group.name,
            rdata::record_type_name(group.rtype)
        ));
    }
    match (&member.rule, first) {
        (RoutingRule::Failover(role), _)
            if group
                .members
                .iter()
                .any(|m| m.rule == RoutingRule::Failover(*role)) =>
        {
            Some(format!(
                "{} already has a {} set",
                group.name,
                if *role == FailoverRole::Primary {
                    "primary"
                } else {
                    "secondary"
                }
            ))
        }
        (RoutingRule::Geo(target), _) if group.members.iter().any(|m| m.rule == member.rule) => {
            Some(format!(
                "another set of {} already covers {target:?}",
                group.name
            ))
        }
        (
            RoutingRule::Cidr {
                collection,
                location,
            },
            RoutingRule::Cidr {
                collection: first_collection,
                ..
            },
        ) => {
            if collection != first_collection {
                Some(format!(
                    "all sets of {} must use one CIDR collection",
                    group.name
                ))
            } else if group.members.iter().any(|m| m.rule == member.rule) {
                let name = location.map_or("*", |l| {
                    ctx.collections[*collection].locations[l].name.as_str()
                });
                Some(format!(
                    "another set of {} already uses location {name:?}",
                    group.name
                ))
            } else {
                None
            }
        }
        _ => None,
    }
}

fn policy_name(rule: &RoutingRule) -> &'static str {
    match rule {
        RoutingRule::Weighted(_) => "weighted",
        RoutingRule::Failover(_) => "failover",
        RoutingRule::Latency(_) => "latency",
        RoutingRule::Geo(_) => "geolocation",
        RoutingRule::Cidr { .. } => "cidr",
        RoutingRule::Multivalue => "multivalue",
    }
}

/// Geolocation needs some way to locate clients; latency needs their coordinates.
fn require_location_source(
    rule: &RoutingRule,
    key: &str,
    span: Range<usize>,
    ctx: &ZoneContext,
    errors: &mut Vec<ConfigError>,
) {
    let geo = ctx.refs.geo;
    match rule {
        RoutingRule::Geo(_)
            if geo.country_db.is_none() && geo.city_db.is_none() && geo.networks.is_empty() =>
        {
            errors.push(ctx.map.error(span, key, "geolocation routing needs client locations: set [geo] country_db or city_db, or add [[geo.networks]]"));
        }
        RoutingRule::Latency(_)
            if geo.city_db.is_none()
                && !geo
                    .networks
                    .iter()
                    .any(|n| n.location.coordinates.is_some()) =>
        {
            errors.push(ctx.map.error(span, key, "latency routing needs client coordinates: set [geo] city_db, or give [[geo.networks]] latitude and longitude"));
        }
        _ => {}
    }
}
