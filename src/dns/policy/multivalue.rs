//! Multivalue answer: up to eight healthy sets in random order; when none is healthy, up to
//! eight of all of them.

use rand::seq::SliceRandom;

use super::{Chosen, Decision, Health, MULTIVALUE_LIMIT};

pub(super) fn pick(health: &Health) -> Decision {
    let mut chosen: Vec<usize> = health.candidates().collect();
    chosen.shuffle(&mut rand::rng());
    chosen.truncate(MULTIVALUE_LIMIT);
    Decision {
        chosen: Chosen::Many(chosen),
        scope: 0,
    }
}
