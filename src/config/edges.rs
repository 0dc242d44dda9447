//! `[[edge_groups]]`: named sets of CDN edges that alias records answer with, as Route 53
//! alias records answer with CloudFront's edges.

use std::net::IpAddr;

use toml::Spanned;

use super::diag::{ConfigError, SourceMap};
use super::dns::GeoTarget;
use super::raw::{RawEdgeGroup, RawEdgeMember};
use crate::geo::Region;
use crate::health::HealthCheckConfig;

/// A group of edges; every member is a candidate for each alias naming the group.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeGroup {
    pub id: String,
    pub members: Vec<EdgeMember>,
}

/// One edge and what each routing policy reads of it; a policy needs its own field on every
/// member (checked where an alias names the group with that policy).
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeMember {
    pub address: IpAddr,
    /// Index into `[[regions]]`: where the edge is, for latency routing.
    pub region: Option<usize>,
    /// Whose viewers the edge serves, for geolocation routing.
    pub geo: Option<GeoTarget>,
    /// Its share under weighted routing; 1 when not given.
    pub weight: u8,
    /// Index into `[[health_checks]]`; none means always healthy.
    pub health_check: Option<usize>,
}

/// Checks every group, pushing problems onto `errors`; groups with errors are left out.
pub(super) fn validate(
    raw: &[Spanned<RawEdgeGroup>],
    refs: &Refs,
    errors: &mut Vec<ConfigError>,
) -> Vec<EdgeGroup> {
    let map = refs.map;
    let mut groups: Vec<EdgeGroup> = Vec::new();
    for (gi, group) in raw.iter().enumerate() {
        let key = format!("edge_groups[{gi}]");
        let g = group.get_ref();
        let before = errors.len();
        if groups.iter().any(|known| known.id == *g.id.get_ref()) {
            errors.push(map.error(
                g.id.span(),
                format!("{key}.id"),
                format!("{:?} is used by another edge group", g.id.get_ref()),
            ));
        }
        if g.members.is_empty() {
            errors.push(map.error(
                group.span(),
                format!("{key}.members"),
                "an edge group needs at least one member",
            ));
        }
        let mut members: Vec<EdgeMember> = Vec::new();
        for (mi, raw_member) in g.members.iter().enumerate() {
            let key = format!("{key}.members[{mi}]");
            let Some(member) = edge_member(raw_member.get_ref(), &key, refs, errors) else {
                continue;
            };
            if members.iter().any(|m| m.address == member.address) {
                errors.push(map.error(
                    raw_member.get_ref().address.span(),
                    format!("{key}.address"),
                    format!("{} is already a member of this group", member.address),
                ));
            }
            members.push(member);
        }
        if errors.len() == before {
            groups.push(EdgeGroup {
                id: g.id.get_ref().clone(),
                members,
            });
        }
    }
    groups
}

/// What a member's fields may name.
pub(super) struct Refs<'a> {
    pub health_checks: &'a [HealthCheckConfig],
    /// Ids of health checks left out for their own (reported) errors: naming one is no
    /// further error.
    pub broken_health_checks: &'a [&'a str],
    pub regions: &'a [Region],
    pub map: &'a SourceMap<'a>,
}

fn edge_member(
    raw: &RawEdgeMember,
    key: &str,
    refs: &Refs,
    errors: &mut Vec<ConfigError>,
) -> Option<EdgeMember> {
    let map = refs.map;
    let before = errors.len();
    let address = raw.address.get_ref().parse::<IpAddr>().ok();
    if address.is_none() {
        errors.push(map.error(
            raw.address.span(),
            format!("{key}.address"),
            format!(
                "{:?} is not an IP address (an edge is answered as an A or AAAA record)",
                raw.address.get_ref()
            ),
        ));
    }
    let region = raw.region.as_ref().and_then(|region| {
        let found = refs.regions.iter().position(|r| r.id == *region.get_ref());
        if found.is_none() {
            errors.push(map.error(
                region.span(),
                format!("{key}.region"),
                format!("no [[regions]] entry has id {:?}", region.get_ref()),
            ));
        }
        found
    });
    let geo = raw.geo.as_ref().and_then(|geo| {
        let target = super::dns::geo_target(geo.get_ref());
        if target.is_none() {
            errors.push(map.error(
                geo.span(),
                format!("{key}.geo"),
                super::dns::GEO_TARGET_FORMS,
            ));
        }
        target
    });
    let weight = match &raw.weight {
        None => Some(1),
        Some(weight) => u8::try_from(*weight.get_ref()).ok().or_else(|| {
            errors.push(map.error(
                weight.span(),
                format!("{key}.weight"),
                format!("{} is out of range (expected 0 to 255)", weight.get_ref()),
            ));
            None
        }),
    };
    let health_check = raw.health_check.as_ref().and_then(|id| {
        let found = refs
            .health_checks
            .iter()
            .position(|c| c.id == *id.get_ref());
        if found.is_none() && !refs.broken_health_checks.contains(&id.get_ref().as_str()) {
            errors.push(map.error(
                id.span(),
                format!("{key}.health_check"),
                format!("no health check has id {:?}", id.get_ref()),
            ));
        }
        found
    });
    if errors.len() > before {
        return None;
    }
    Some(EdgeMember {
        address: address?,
        region,
        geo,
        weight: weight?,
        health_check,
    })
}
