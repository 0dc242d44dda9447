//! Routed record sets: one routing field each, grouped by name and type, cross-checked.

use std::ops::Range;

use hickory_proto::rr::{LowerName, Name, RecordType};

use super::zone::inline_record;
use super::*;
use crate::config::diag::{ConfigError, SourceMap};
use crate::config::raw::RawRecord;
use crate::dns::policy::transfer_choice;
use crate::dns::rdata;
use crate::geo::Code;

/// A record set with `set_id` or any routing field is routed.
pub(super) fn is_routed(raw: &RawRecord) -> bool {
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
pub(super) fn routed_record(
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
        if found.is_none()
            && !ctx
                .refs
                .broken_health_checks
                .contains(&h.get_ref().as_str())
        {
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
    join_group(name, rtype, member, key, record.span(), ctx, errors, groups);
}

/// Adds `member` to the group of `name` and `rtype`, starting it if it is the first, unless
/// it conflicts with the sets already there. `key` and `span` are the record's.
#[allow(clippy::too_many_arguments)]
pub(super) fn join_group(
    name: Name,
    rtype: RecordType,
    member: RoutedMemberData,
    key: &str,
    span: Range<usize>,
    ctx: &ZoneContext,
    errors: &mut Vec<ConfigError>,
    groups: &mut Vec<(RoutedGroupData, Origin)>,
) {
    let lower = LowerName::new(&name);
    let Some((group, _)) = groups
        .iter_mut()
        .find(|(g, _)| g.rtype == rtype && LowerName::new(&g.name) == lower)
    else {
        if let RoutingRule::Latency(_) | RoutingRule::Geo(_) = member.rule {
            require_location_source(&member.rule, key, span.clone(), ctx, errors);
        }
        let origin_of_record = Origin::Inline {
            span,
            key_path: key.to_string(),
        };
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
        errors.push(ctx.map.error(span, key.to_string(), conflict));
        return;
    }
    group.members.push(member);
}

/// Routed names a transfer warning lists before it counts the rest.
const WARNING_NAMES: usize = 10;

/// The warning for zone `origin`, transferable by its `allow_transfer` (first entry `at`),
/// with routed `groups`: a secondary has no routing policy to apply, so it gets one fixed
/// answer per routed name (README, "Routed names"); the warning names each and its set.
pub(super) fn transfer_warning(
    origin: &Name,
    groups: &[RoutedGroupData],
    at: &toml::Spanned<String>,
    key: &str,
    map: &SourceMap,
) -> ConfigError {
    let mut listed: Vec<String> = groups
        .iter()
        .take(WARNING_NAMES)
        .map(transferred_sets)
        .collect();
    if groups.len() > WARNING_NAMES {
        listed.push(format!("and {} more", groups.len() - WARNING_NAMES));
    }
    map.error(
        at.span(),
        format!("{key}.allow_transfer"),
        format!(
            "zone {origin} may be transferred, but secondaries cannot apply routing policies: \
             each routed name is transferred as one fixed answer, whatever health and clients \
             say: {}",
            listed.join("; ")
        ),
    )
}

/// `www.home.example. A gets set "blue" (the failover primary)`: what a transfer carries
/// for `group`, as [`transfer_choice`] picks it, and why.
fn transferred_sets(group: &RoutedGroupData) -> String {
    let rules: Vec<&RoutingRule> = group.members.iter().map(|m| &m.rule).collect();
    let chosen = transfer_choice(&rules);
    let ids: Vec<String> = (chosen.iter())
        .map(|&i| format!("{:?}", group.members[i].set_id))
        .collect();
    let why = match (rules.first(), chosen.first().map(|&i| rules[i])) {
        (Some(RoutingRule::Multivalue), _) => "every multivalue set",
        (Some(RoutingRule::Weighted(_)), _) => "the heaviest weighted set",
        (Some(RoutingRule::Latency(_)), _) => "the first latency set in config order",
        (_, Some(RoutingRule::Failover(FailoverRole::Primary))) => "the failover primary",
        (_, Some(RoutingRule::Geo(GeoTarget::Default))) => "the geolocation default, country \"*\"",
        (_, Some(RoutingRule::Cidr { location: None, .. })) => "the CIDR default, location \"*\"",
        _ => "no default set: the first in config order",
    };
    format!(
        "{} {} gets set{} {} ({why})",
        group.name,
        rdata::record_type_name(group.rtype),
        if ids.len() == 1 { "" } else { "s" },
        ids.join(", ")
    )
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
        "geo" => geo_target(raw.geo.as_ref()?.get_ref())
            .map(RoutingRule::Geo)
            .or_else(|| fail(GEO_TARGET_FORMS.to_string())),
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

/// What a `geo = { ... }` that does not read is told.
pub(in crate::config) const GEO_TARGET_FORMS: &str = "expected { continent = \"EU\" }, { country = \"KR\" }, { country = \"US\", subdivision = \"CA\" } or { country = \"*\" } (the default)";

/// A geolocation target from its table, codes upper-cased; `None` when it is none of the
/// forms of [`GEO_TARGET_FORMS`].
pub(in crate::config) fn geo_target(raw: &crate::config::raw::RawGeoTarget) -> Option<GeoTarget> {
    let code = |s: &Option<String>| s.as_deref().map(Code::new);
    let is_country =
        |c: &Code| c.as_str().len() == 2 && c.as_str().bytes().all(|b| b.is_ascii_alphabetic());
    match (
        code(&raw.continent),
        raw.country.as_deref(),
        code(&raw.subdivision),
    ) {
        (Some(Some(continent)), None, None)
            if crate::config::geo::CONTINENTS.contains(&continent.as_str()) =>
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
            first.policy_name(),
            member.rule.policy_name()
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

impl RoutingRule {
    /// The policy's name, as config errors and the `policy` metric label say it.
    pub fn policy_name(&self) -> &'static str {
        match self {
            RoutingRule::Weighted(_) => "weighted",
            RoutingRule::Failover(_) => "failover",
            RoutingRule::Latency(_) => "latency",
            RoutingRule::Geo(_) => "geolocation",
            RoutingRule::Cidr { .. } => "cidr",
            RoutingRule::Multivalue => "multivalue",
        }
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
