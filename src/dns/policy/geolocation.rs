//! Geolocation: the most specific matching set wins (subdivision > country > continent >
//! default `*`); an unhealthy match falls back to the next less specific healthy one. No match
//! and no default → no answer (NODATA).

use super::{Client, Decision, Health, Member, RoutingEnv, locate, one};
use crate::config::dns::{GeoTarget, RoutingRule};
use crate::geo::{Code, Location};

pub(super) fn pick(
    members: &[Member],
    health: &Health,
    client: &Client,
    env: &RoutingEnv,
) -> Decision {
    let (located, scope) = locate(client, env);
    let location = located.map(|l| l.location).unwrap_or_default();
    // Matching sets, most specific first.
    let mut matches: Vec<(u8, usize)> = members
        .iter()
        .enumerate()
        .filter_map(|(i, m)| match &m.rule {
            RoutingRule::Geo(target) => specificity(target, &location).map(|s| (s, i)),
            _ => None,
        })
        .collect();
    matches.sort_by_key(|&(s, _)| std::cmp::Reverse(s));
    let chosen = matches
        .iter()
        .find(|&&(_, i)| health.is_healthy(i))
        .or(matches.first())
        .map(|&(_, i)| i);
    one(chosen, scope)
}

/// How specific a match `target` is for `location` (higher wins), or `None` if it does not match.
fn specificity(target: &GeoTarget, location: &Location) -> Option<u8> {
    let is = |want: &Code, have: &Option<Code>| have.as_ref() == Some(want);
    match target {
        GeoTarget::Subdivision {
            country,
            subdivision,
        } => {
            (is(country, &location.country) && is(subdivision, &location.subdivision)).then_some(3)
        }
        GeoTarget::Country(country) => is(country, &location.country).then_some(2),
        GeoTarget::Continent(continent) => is(continent, &location.continent).then_some(1),
        GeoTarget::Default => Some(0),
    }
}
