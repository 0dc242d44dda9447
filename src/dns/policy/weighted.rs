//! Weighted: one set with probability weight / Σweights among healthy non-zero sets; zero
//! weights only when every non-zero set is unhealthy, or when all weights are zero.

use rand::RngExt;

use super::{Decision, Health, Member, one};
use crate::config::dns::RoutingRule;

pub(super) fn pick(members: &[Member], health: &Health) -> Decision {
    let weight = |i: usize| match members[i].rule {
        RoutingRule::Weighted(w) => u32::from(w),
        _ => 0,
    };
    let considered = health.candidates();
    let total: u32 = considered.clone().map(weight).sum();
    if total > 0 {
        let mut ticket = rand::rng().random_range(0..total);
        for i in considered.clone() {
            let w = weight(i);
            if ticket < w {
                return one(Some(i), 0);
            }
            ticket -= w;
        }
    }
    // Every considered set has weight 0: equal chance.
    let count = considered.clone().count();
    if count == 0 {
        return one(None, 0);
    }
    one(
        considered.clone().nth(rand::rng().random_range(0..count)),
        0,
    )
}
