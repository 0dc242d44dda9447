//! Multivalue answer: up to eight healthy sets in random order; when none is healthy, up to
//! eight of all of them.

use rand::seq::SliceRandom;

use super::{Decision, MULTIVALUE_LIMIT, healthy_or_all};

pub(super) fn pick(healthy: &[bool]) -> Decision {
    let mut chosen = healthy_or_all(0..healthy.len(), healthy);
    chosen.shuffle(&mut rand::rng());
    chosen.truncate(MULTIVALUE_LIMIT);
    Decision { chosen, scope: 0 }
}
