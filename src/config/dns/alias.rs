//! Alias records (`alias = { edges, policy }`): a name answered with the addresses of an
//! `[[edge_groups]]` entry, as Route 53 answers an alias to CloudFront with edge addresses —
//! at the apex too, and with no CNAME for resolvers to chase. Each edge of the record's
//! address family becomes a routed set of its own, so the policies, health rule and client
//! subnet scopes are those of every other routed group.

use hickory_proto::rr::LowerName;
use hickory_proto::rr::rdata::{A, AAAA};

use super::routed::join_group;
use super::zone::{owner_name, ttl};
use super::*;
use crate::config::edges::{EdgeGroup, EdgeMember};
use crate::config::raw::RawRecord;
use crate::dns::rdata;

/// CloudFront's alias targets are answered with a 60 s TTL; an alias takes that unless its
/// record sets `ttl`.
const ALIAS_TTL: u32 = 60;

/// The routing fields an alias cannot have: its policy comes from `alias.policy`, its sets
/// from the edge group.
fn routing_fields(raw: &RawRecord) -> Vec<(&'static str, Range<usize>)> {
    let span = |s: Option<Range<usize>>, name| s.map(|s| (name, s));
    [
        span(raw.set_id.as_ref().map(|v| v.span()), "set_id"),
        span(raw.health_check.as_ref().map(|v| v.span()), "health_check"),
        span(raw.weight.as_ref().map(|v| v.span()), "weight"),
        span(raw.failover.as_ref().map(|v| v.span()), "failover"),
        span(raw.region.as_ref().map(|v| v.span()), "region"),
        span(raw.geo.as_ref().map(|v| v.span()), "geo"),
        span(raw.cidr.as_ref().map(|v| v.span()), "cidr"),
        span(raw.multivalue.as_ref().map(|v| v.span()), "multivalue"),
        span(raw.values.first().map(|v| v.span()), "values"),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Where an alias put its edges: checked once the zone's records are all read, since routed
/// sets of the same name and type may come before or after it.
pub(super) struct Placed {
    name: Name,
    rtype: RecordType,
    edges: usize,
    key: String,
    span: Range<usize>,
}

/// An alias answers its name and type alone, as in Route 53 (a routed set beside it would
/// silently join its edges' policy).
pub(super) fn check_alone(
    placed: &[Placed],
    groups: &[(RoutedGroupData, Origin)],
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) {
    for alias in placed {
        let lower = LowerName::new(&alias.name);
        let shared = groups.iter().find(|(g, _)| {
            g.rtype == alias.rtype
                && LowerName::new(&g.name) == lower
                && g.members.len() != alias.edges
        });
        if let Some((group, _)) = shared {
            errors.push(map.error(
                alias.span.clone(),
                alias.key.clone(),
                format!(
                    "{} {} has an alias and other record sets; an alias answers its name and \
                     type alone",
                    group.name,
                    rdata::record_type_name(group.rtype)
                ),
            ));
        }
    }
}

/// Checks one alias record and adds its edges, one routed set each, to the groups.
pub(super) fn alias_record(
    record: &toml::Spanned<RawRecord>,
    key: &str,
    origin: &Name,
    ctx: &ZoneContext,
    errors: &mut Vec<ConfigError>,
    groups: &mut Vec<(RoutedGroupData, Origin)>,
) -> Option<Placed> {
    let map = ctx.map;
    let raw = record.get_ref();
    let alias = raw.alias.as_ref()?;
    let before = errors.len();
    for (field, span) in routing_fields(raw) {
        errors.push(map.error(
            span,
            format!("{key}.{field}"),
            format!(
                "an alias record takes its addresses, health and routing from its edge group: \
                 leave {field} out"
            ),
        ));
    }
    let name = owner_name(raw.name.get_ref(), origin)
        .and_then(|name| {
            if origin.zone_of(&name) {
                Ok(name)
            } else {
                Err(format!("{name} is outside zone {origin}"))
            }
        })
        .map_err(|message| errors.push(map.error(raw.name.span(), format!("{key}.name"), message)))
        .ok();
    let rtype = match rdata::parse_record_type(raw.rtype.get_ref()) {
        Ok(t @ (RecordType::A | RecordType::AAAA)) => Some(t),
        Ok(other) => {
            errors.push(map.error(
                raw.rtype.span(),
                format!("{key}.type"),
                format!(
                    "an alias to edges is an A or AAAA record, not {}",
                    rdata::record_type_name(other)
                ),
            ));
            None
        }
        Err(e) => {
            errors.push(map.error(raw.rtype.span(), format!("{key}.type"), e.to_string()));
            None
        }
    };
    let record_ttl = match &raw.ttl {
        Some(t) => ttl(t, &format!("{key}.ttl"), map, errors),
        None => Some(ALIAS_TTL),
    };
    let a = alias.get_ref();
    let group = ctx
        .refs
        .edge_groups
        .iter()
        .find(|g| g.id == *a.edges.get_ref());
    if group.is_none() {
        errors.push(map.error(
            a.edges.span(),
            format!("{key}.alias.edges"),
            format!("no [[edge_groups]] entry has id {:?}", a.edges.get_ref()),
        ));
    }
    let policy = match a.policy.as_ref() {
        None => Some(Policy::Latency),
        Some(p) => Policy::parse(p.get_ref()).or_else(|| {
            errors.push(map.error(
                p.span(),
                format!("{key}.alias.policy"),
                format!(
                    "{:?} is not an alias policy (expected \"latency\", \"geolocation\", \
                     \"weighted\" or \"multivalue\")",
                    p.get_ref()
                ),
            ));
            None
        }),
    };
    let (Some(name), Some(rtype), Some(record_ttl), Some(group), Some(policy)) =
        (name, rtype, record_ttl, group, policy)
    else {
        return None;
    };
    if errors.len() > before {
        return None;
    }
    let edges: Vec<&EdgeMember> = group
        .members
        .iter()
        .filter(|m| m.address.is_ipv4() == (rtype == RecordType::A))
        .collect();
    if edges.is_empty() {
        errors.push(map.error(
            a.edges.span(),
            format!("{key}.alias.edges"),
            format!(
                "edge group {:?} has no {} address for this {} record",
                group.id,
                if rtype == RecordType::A {
                    "IPv4"
                } else {
                    "IPv6"
                },
                rdata::record_type_name(rtype)
            ),
        ));
        return None;
    }
    let count = edges.len();
    for edge in edges {
        let Some(rule) = policy.rule(edge) else {
            errors.push(map.error(
                a.policy.as_ref().map_or(a.edges.span(), |p| p.span()),
                format!("{key}.alias.policy"),
                format!(
                    "{} routing reads each edge's {}, and edge {} of group {:?} has none",
                    policy.name(),
                    policy.field(),
                    edge.address,
                    group.id
                ),
            ));
            return None;
        };
        let member = RoutedMemberData {
            set_id: set_id(group, edge),
            ttl: record_ttl,
            rdatas: vec![address_rdata(edge)],
            health_check: edge.health_check,
            rule,
        };
        join_group(
            name.clone(),
            rtype,
            member,
            key,
            record.span(),
            ctx,
            errors,
            groups,
        );
    }
    Some(Placed {
        name,
        rtype,
        edges: count,
        key: key.to_string(),
        span: record.span(),
    })
}

/// Named after the group and the edge, so metrics and logs say which edge answered.
fn set_id(group: &EdgeGroup, edge: &EdgeMember) -> String {
    format!("{}/{}", group.id, edge.address)
}

fn address_rdata(edge: &EdgeMember) -> RData {
    match edge.address {
        std::net::IpAddr::V4(v4) => RData::A(A(v4)),
        std::net::IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// How an alias chooses among its edges.
#[derive(Clone, Copy)]
enum Policy {
    Latency,
    Geolocation,
    Weighted,
    Multivalue,
}

impl Policy {
    fn parse(text: &str) -> Option<Policy> {
        match text.to_ascii_lowercase().as_str() {
            "latency" => Some(Policy::Latency),
            "geolocation" => Some(Policy::Geolocation),
            "weighted" => Some(Policy::Weighted),
            "multivalue" => Some(Policy::Multivalue),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Policy::Latency => "latency",
            Policy::Geolocation => "geolocation",
            Policy::Weighted => "weighted",
            Policy::Multivalue => "multivalue",
        }
    }

    /// The member field the policy reads.
    fn field(self) -> &'static str {
        match self {
            Policy::Latency => "region",
            Policy::Geolocation => "geo",
            Policy::Weighted => "weight",
            Policy::Multivalue => "address",
        }
    }

    /// `edge`'s part under this policy; `None` when the edge lacks the field it reads.
    fn rule(self, edge: &EdgeMember) -> Option<RoutingRule> {
        match self {
            Policy::Latency => edge.region.map(RoutingRule::Latency),
            Policy::Geolocation => edge.geo.clone().map(RoutingRule::Geo),
            Policy::Weighted => Some(RoutingRule::Weighted(edge.weight)),
            Policy::Multivalue => Some(RoutingRule::Multivalue),
        }
    }
}
