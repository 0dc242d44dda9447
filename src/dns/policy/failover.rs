//! Failover: the primary while it is healthy (or has no check), else a healthy secondary; when
//! both are down, the primary. A secondary without a check counts as healthy.

use super::{Decision, Health, Member, one};
use crate::config::dns::{FailoverRole, RoutingRule};

pub(super) fn pick(members: &[Member], health: &Health) -> Decision {
    let find = |role| {
        members
            .iter()
            .position(|m| m.rule == RoutingRule::Failover(role))
    };
    let primary = find(FailoverRole::Primary);
    let secondary = find(FailoverRole::Secondary);
    let chosen = match (primary, secondary) {
        (Some(p), _) if health.is_healthy(p) => Some(p),
        (Some(p), Some(s)) => Some(if health.is_healthy(s) { s } else { p }),
        (p, s) => p.or(s),
    };
    one(chosen, 0)
}
