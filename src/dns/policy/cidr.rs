//! IP-based (CIDR) routing: the longest block of the collection that contains the client picks
//! the location; a block longer than the client's ECS prefix does not match (the client did
//! not reveal enough). Location `*` is the default; no match and no default → NODATA.

use std::net::IpAddr;

use ipnet::IpNet;

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
    let blocks = collection
        .locations
        .iter()
        .enumerate()
        .flat_map(|(index, location)| location.blocks.iter().map(move |block| (index, block)));
    let scope = scope(client, best, blocks);
    let chosen = match (matched, default) {
        (Some(m), _) if health.is_healthy(m) => Some(m),
        (Some(m), Some(d)) => Some(if health.is_healthy(d) { d } else { m }),
        (m, d) => m.or(d),
    };
    one(chosen, scope)
}

/// The ECS scope of a CIDR decision (RFC 7871 §7.2.1): the matched block's length (the
/// client's own prefix when nothing matched), made longer while a block of another location
/// lies inside the claimed subnet, so no resolver caches this answer for clients it does not
/// fit. A block inside the client's own subnet pushes the scope to its full length: the
/// client did not reveal enough to tell.
fn scope<'a>(
    client: &Client,
    matched: Option<(usize, &IpNet)>,
    blocks: impl Iterator<Item = (usize, &'a IpNet)> + Clone,
) -> u8 {
    let mut scope = matched.map_or(client.prefix_len, |(_, block)| block.prefix_len());
    let matched_location = matched.map(|(location, _)| location);
    loop {
        let needed = blocks
            .clone()
            .filter(|(location, _)| Some(*location) != matched_location)
            .filter(|(_, block)| block.prefix_len() > scope)
            .filter_map(|(_, block)| {
                let common = common_prefix(client.addr, block.network())?;
                if common < scope {
                    None
                } else if common >= client.prefix_len {
                    Some(block.prefix_len())
                } else {
                    Some(block.prefix_len().min(common + 1))
                }
            })
            .max();
        match needed {
            Some(longer) if longer > scope => scope = longer,
            _ => return scope,
        }
    }
}

/// Leading bits two addresses of one family share.
fn common_prefix(a: IpAddr, b: IpAddr) -> Option<u8> {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => Some((u32::from(a) ^ u32::from(b)).leading_zeros() as u8),
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            Some((u128::from(a) ^ u128::from(b)).leading_zeros() as u8)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(text: &str) -> Client {
        let net: IpNet = text.parse().unwrap();
        Client {
            addr: net.addr(),
            prefix_len: net.prefix_len(),
        }
    }

    fn scope_of(client_net: &str, matched: Option<(usize, &str)>, blocks: &[(usize, &str)]) -> u8 {
        let blocks: Vec<(usize, IpNet)> = blocks
            .iter()
            .map(|(l, b)| (*l, b.parse().unwrap()))
            .collect();
        let matched_net = matched.map(|(l, b)| (l, b.parse::<IpNet>().unwrap()));
        scope(
            &client(client_net),
            matched_net.as_ref().map(|(l, b)| (*l, b)),
            blocks.iter().map(|(l, b)| (*l, b)),
        )
    }

    #[test]
    fn scope_is_the_matched_block_when_nothing_else_is_inside_it() {
        assert_eq!(
            scope_of(
                "192.168.7.0/24",
                Some((0, "192.168.0.0/16")),
                &[(0, "192.168.0.0/16"), (1, "10.0.0.0/8")]
            ),
            16
        );
    }

    #[test]
    fn a_nested_block_of_another_location_narrows_the_scope() {
        let blocks = [(0, "10.1.0.0/16"), (1, "10.1.2.0/24")];
        assert_eq!(
            scope_of("10.1.3.0/24", Some((0, "10.1.0.0/16")), &blocks),
            24
        );
        assert_eq!(
            scope_of("10.1.128.0/24", Some((0, "10.1.0.0/16")), &blocks),
            17
        );
    }

    #[test]
    fn a_block_inside_the_client_subnet_gives_its_full_length() {
        assert_eq!(scope_of("10.2.0.0/16", None, &[(0, "10.2.5.0/24")]), 24);
        assert_eq!(
            scope_of("2001:db8:abcd::/48", None, &[(0, "2001:db8:abcd:1::/64")]),
            64
        );
        assert_eq!(scope_of("10.9.0.0/16", None, &[(0, "10.2.5.0/24")]), 16);
    }
}
