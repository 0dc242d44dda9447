//! The recent state changes of one check, for the console's "recent changes": a bounded ring,
//! written only when a check flips (rare), read at summary time.

use std::collections::VecDeque;
use std::time::SystemTime;

/// Changes kept per check; older ones are forgotten.
pub const KEPT: usize = 20;

/// One state change: when, to which state, and the result that caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct Flip {
    pub at: SystemTime,
    pub healthy: bool,
    /// The probe's (or the children's) failure that made the check unhealthy; `None` for a
    /// flip to healthy.
    pub reason: Option<String>,
}

/// The last [`KEPT`] flips of a check, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flips(VecDeque<Flip>);

impl Flips {
    /// Records `flip`, forgetting the oldest beyond [`KEPT`].
    pub fn push(&mut self, flip: Flip) {
        if self.0.len() == KEPT {
            self.0.pop_front();
        }
        self.0.push_back(flip);
    }

    /// Newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &Flip> {
        self.0.iter().rev()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn keeps_the_newest_and_no_more_than_its_bound() {
        let mut flips = Flips::default();
        for i in 0..KEPT as u64 + 5 {
            flips.push(Flip {
                at: SystemTime::UNIX_EPOCH + Duration::from_secs(i),
                healthy: i % 2 == 0,
                reason: (i % 2 == 1).then(|| format!("failure {i}")),
            });
        }
        let seconds: Vec<u64> = flips
            .newest_first()
            .map(|f| {
                f.at.duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
            })
            .collect();
        assert_eq!(seconds.len(), KEPT);
        assert_eq!(seconds[0], KEPT as u64 + 4);
        assert_eq!(seconds[KEPT - 1], 5);
        let newest = flips.newest_first().next().unwrap();
        assert_eq!(newest.reason.as_deref(), None, "24 is even: healthy");
        assert!(newest.healthy);
    }
}
