//! Weighted: one set with probability weight / Σweights among healthy non-zero sets; zero
//! weights only when every non-zero set is unhealthy, or when all weights are zero.

use rand::RngExt;

use super::{Decision, Member, one};
use crate::config::dns::RoutingRule;

pub(super) fn pick(members: &[Member], healthy: &[bool]) -> Decision {
    let weight = |i: usize| match members[i].rule {
        RoutingRule::Weighted(w) => u32::from(w),
        _ => 0,
    };
    let all: Vec<usize> = (0..members.len()).collect();
    let any_healthy = healthy.iter().any(|h| *h);
    let considered: Vec<usize> = if any_healthy {
        all.into_iter().filter(|&i| healthy[i]).collect()
    } else {
        all
    };
    let nonzero: Vec<usize> = considered
        .iter()
        .copied()
        .filter(|&i| weight(i) > 0)
        .collect();
    let chosen = if nonzero.is_empty() {
        choose_uniform(&considered)
    } else {
        choose_weighted(&nonzero, weight)
    };
    one(chosen, 0)
}

fn choose_uniform(candidates: &[usize]) -> Option<usize> {
    if candidates.is_empty() {
        return None;
    }
    Some(candidates[rand::rng().random_range(0..candidates.len())])
}

fn choose_weighted(candidates: &[usize], weight: impl Fn(usize) -> u32) -> Option<usize> {
    let total: u32 = candidates.iter().map(|&i| weight(i)).sum();
    let mut ticket = rand::rng().random_range(0..total);
    for &i in candidates {
        let w = weight(i);
        if ticket < w {
            return Some(i);
        }
        ticket -= w;
    }
    candidates.last().copied()
}
