//! IP-based (CIDR) routing: the longest block of the collection that contains the client picks
//! the location; a block longer than the client's ECS prefix does not match (the client did
//! not reveal enough). Location `*` is the default; no match and no default → NODATA.

use super::{Client, Decision, Health, Member, RoutingEnv, one};
use crate::config::dns::RoutingRule;

pub(super) fn pick(
    members: &[Member],
    health: &Health,
    client: &Client,
    env: &RoutingEnv,
) -> Decision {
    let Some(RoutingRule::Cidr { collection, .. }) = members.first().map(|m| &m.rule) else {
        return one(None, 0);
    };
    let Some(collection) = env.collections.get(*collection) else {
        return one(None, 0);
    };
    let best = collection
        .locations
        .iter()
        .enumerate()
        .flat_map(|(index, location)| location.blocks.iter().map(move |block| (index, block)))
        .filter(|(_, block)| {
            block.prefix_len() <= client.prefix_len && block.contains(&client.addr)
        })
        .max_by_key(|(_, block)| block.prefix_len());
    let member_for = |location: Option<usize>| {
        members
            .iter()
            .position(|m| matches!(m.rule, RoutingRule::Cidr { location: l, .. } if l == location))
    };
    let matched = best.and_then(|(location, _)| member_for(Some(location)));
    let default = member_for(None);
    let scope = best.map_or(client.prefix_len, |(_, block)| block.prefix_len());
    let chosen = match (matched, default) {
        (Some(m), _) if health.is_healthy(m) => Some(m),
        (Some(m), Some(d)) => Some(if health.is_healthy(d) { d } else { m }),
        (m, d) => m.or(d),
    };
    one(chosen, scope)
}
