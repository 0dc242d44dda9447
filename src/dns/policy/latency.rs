//! Latency: the healthy set whose region is nearest the client (great-circle distance, a
//! stand-in for measured latency); unknown location → the first region in config order.

use super::{Client, Decision, Health, Member, RoutingEnv, locate, one};
use crate::config::dns::RoutingRule;
use crate::geo::distance::great_circle_km;

pub(super) fn pick(
    members: &[Member],
    health: &Health,
    client: &Client,
    env: &RoutingEnv,
) -> Decision {
    let region = |i: usize| match members[i].rule {
        RoutingRule::Latency(r) => r,
        _ => usize::MAX,
    };
    let candidates = health.candidates();
    let (located, scope) = locate(client, env);
    let chosen = match located.and_then(|l| l.location.coordinates) {
        Some(here) => candidates.min_by(|&a, &b| {
            let distance = |i: usize| {
                env.regions
                    .get(region(i))
                    .map_or(f64::INFINITY, |r| great_circle_km(here, r.coordinates))
            };
            distance(a)
                .total_cmp(&distance(b))
                .then(region(a).cmp(&region(b)))
        }),
        None => candidates.min_by_key(|&i| region(i)),
    };
    one(chosen, scope)
}
