//! One zone: its file and inline records, SOA, and the checks only the whole zone can make.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{LowerName, Name, RData, RecordType};

use super::routed::{is_routed, routed_record, transfer_warning};
use super::*;
use crate::config::diag::{ConfigError, SourceMap};
use crate::config::raw::{RawRecord, RawSoa, RawZone};
use crate::dns::{rdata, zonefile};

pub(super) fn validate_zone(
    raw: RawZone,
    zi: usize,
    ctx: &ZoneContext,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
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
    let mut aliases = Vec::new();
    let mut files = Vec::new();
    if let Some(file) = &raw.file {
        let path = base.join(file.get_ref());
        files.push(path.clone());
        match zonefile::load_zone_file(&path, &origin, Some(zone_ttl)) {
            Ok(loaded) => records.extend(loaded.into_iter().map(|r| {
                if !files.contains(&r.file) {
                    files.push(r.file.clone());
                }
                PendingRecord {
                    name: r.name,
                    rtype: r.rtype,
                    ttl: r.ttl,
                    rdata: r.rdata,
                    origin: Origin::File {
                        file: r.file,
                        line: r.line,
                    },
                }
            })),
            // The file itself unreadable: said at the `file = ...` that names it (the
            // message gives the path it resolved to); anything else at its own line.
            Err(file_errors) => errors.extend(file_errors.into_iter().map(|e| {
                if e.line == 0 && e.file == path {
                    map.error(file.span(), format!("{key}.file"), e.message)
                } else {
                    ConfigError {
                        file: e.file,
                        line: e.line,
                        col: 0,
                        key_path: format!("{key}.file"),
                        message: e.message,
                    }
                }
            })),
        }
    }
    for (ri, record) in raw.records.iter().enumerate() {
        let record_key = format!("{key}.records[{ri}]");
        if record.get_ref().alias.is_some() {
            aliases.extend(super::alias::alias_record(
                record,
                &record_key,
                &origin,
                ctx,
                errors,
                &mut routed,
            ));
        } else if is_routed(record.get_ref()) {
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
    super::alias::check_alone(&aliases, &routed, map, errors);
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
    // Checks across records still run on the records that parsed, so a CNAME beside other
    // data is reported with a bad value elsewhere in the zone.
    let complete = errors.len() == errors_before;
    let serial_generated = match &raw.soa {
        Some(soa) => soa.get_ref().serial.is_none(),
        None => !records.iter().any(|r| r.rtype == RecordType::SOA),
    };
    let transfer = super::transfer::validate(
        &raw.allow_transfer,
        &raw.notify,
        ctx.tsig_keys,
        &key,
        map,
        errors,
    );
    let mut update = super::update::validate(
        &raw.allow_update,
        raw.serial_policy.as_ref(),
        &origin,
        ctx.tsig_keys,
        &key,
        map,
        errors,
    );
    update.write_back = super::update::write_back(&raw, &files, &key, map, errors);
    if !raw.allow_update.is_empty() && ctx.data_dir.is_none() {
        errors.push(map.error(
            raw.allow_update[0].span(),
            format!("{key}.allow_update"),
            "updates are kept in a journal: set [dns] data_dir",
        ));
    }
    let dnssec = (raw.dnssec.as_ref())
        .and_then(|d| super::dnssec::validate(d, ctx.data_dir, base, &key, map, errors));
    let zone_span = raw.name.span();
    let rrsets = group_and_check(
        records, &routed, &origin, zone_ttl, map, &key, zone_span, complete, errors,
    )
    .filter(|_| complete)?;
    let routed: Vec<RoutedGroupData> = routed.into_iter().map(|(group, _)| group).collect();
    if let (Some(first), false) = (raw.allow_transfer.first(), routed.is_empty()) {
        warnings.push(transfer_warning(&origin, &routed, first, &key, map));
    }
    if let Some(dnssec) = raw
        .dnssec
        .as_ref()
        .filter(|_| !raw.allow_transfer.is_empty())
        && !serial_generated
    {
        warnings.push(map.error(
            dnssec.span(),
            format!("{key}.dnssec"),
            format!(
                "zone {origin} is signed and may be transferred, but its SOA serial is \
                 configured: the signatures are renewed every day, the serial moves only when \
                 you change it, and secondaries keep signatures that expire 14 days after they \
                 were made; change the serial at least every 13 days, or leave it out to have \
                 it generated (and moved on with each renewal)"
            ),
        ));
    }
    Some(ZoneData {
        origin,
        serial_generated,
        files,
        rrsets,
        routed,
        transfer,
        update,
        dnssec,
    })
}

pub(super) fn ttl(
    value: &toml::Spanned<i64>,
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<u32> {
    bounded(&Some(value.clone()), 0..=MAX_TTL, key, map, errors).map(|t| t as u32)
}

/// Resolves a record name as written in the TOML: `@`, relative, or absolute with a trailing dot.
pub(super) fn owner_name(text: &str, origin: &Name) -> Result<Name, String> {
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

pub(super) fn inline_record(
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
    let mut seconds = |field: &Option<toml::Spanned<crate::config::units::ConfigDuration>>,
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
    complete: bool,
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
    // A zone with a record that did not parse may have lost its NS that way: not repeated.
    if complete && !sets.contains_key(&(apex.clone(), u16::from(RecordType::NS))) {
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
