//! The ZSK schedule (RFC 7583 §3.2.1, pre-publication) and what each key does at a time.
//!
//! A zone with `zsk_lifetime` has a KSK (flags 257), which signs the DNSKEY, CDS and CDNSKEY
//! RRsets, and ZSKs (flags 256), which sign the rest. The schedule is decided from the keys'
//! times alone (the `.key` files' `Publish`, `Activate`, `Inactive` and `Delete`), so it is
//! the same whether the server ran through a roll or started in its middle:
//!
//! 1. publish interval (DNSKEY TTL + propagation) before the active ZSK's lifetime ends, a
//!    successor is made: published now, active when the old key's lifetime ends (and not
//!    before it has been published for the publish interval); the old key gets that time as
//!    its `Inactive`, and as its `Delete` that time plus the zone's largest TTL and the
//!    propagation delay (the retire interval: cached signatures by it have expired by then);
//! 2. at `Activate` the successor signs and the old key stops (its `Inactive`);
//! 3. at `Delete` the old key leaves the DNSKEY RRset and its files move to `retired/`.
//!
//! The first ZSK of a zone (a new one, or a CSK zone given `zsk_lifetime`) is pre-published
//! too, the 257 key signing everything meanwhile; whenever no ZSK is active, the 257 keys
//! sign everything, as a CSK does.

use std::path::Path;

use hickory_proto::rr::Name;
use tracing::info;

use super::keys::{
    self, KeyError, KeyTimes, SigningKey, ZSK_FLAGS, load_or_generate, retire_key, set_times,
};
use crate::config::dns::{DnssecAlgorithm, ZskTiming};

/// One key as the schedule sees it: its tag, whether it is a KSK, its times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFacts {
    pub tag: u16,
    pub ksk: bool,
    pub times: KeyTimes,
}

/// What a key does in the zone at one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUse {
    /// In the DNSKEY RRset.
    pub published: bool,
    /// Signs the apex DNSKEY, CDS and CDNSKEY RRsets.
    pub signs_keys: bool,
    /// Signs every other RRset.
    pub signs_zone: bool,
}

/// What the schedule changes in a zone's keys now.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// ZSKs whose `Delete` time has come: their files move to `retired/`.
    pub retire: Vec<u16>,
    /// The active ZSK a successor replaces, and its times with `Inactive` and `Delete` set.
    pub ending: Option<(u16, KeyTimes)>,
    /// The successor ZSK to make, with its times.
    pub successor: Option<KeyTimes>,
}

impl KeyFacts {
    pub fn of(key: &SigningKey) -> KeyFacts {
        KeyFacts {
            tag: key.tag(),
            ksk: key.is_ksk(),
            times: key.times(),
        }
    }
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.retire.is_empty() && self.ending.is_none() && self.successor.is_none()
    }
}

/// What each of `keys` does at `now`: the 257 keys sign the keys' RRsets; the active ZSKs
/// sign the rest, or the 257 keys when no ZSK is active.
pub fn uses(keys: &[KeyFacts], now: u64) -> Vec<KeyUse> {
    let zsk_active = keys.iter().any(|k| !k.ksk && k.times.is_active(now));
    (keys.iter())
        .map(|k| {
            let active = k.times.is_active(now);
            KeyUse {
                published: k.times.is_published(now),
                signs_keys: k.ksk && active,
                signs_zone: active && (k.ksk != zsk_active),
            }
        })
        .collect()
}

/// What the schedule `timing` (None: no ZSKs are made) does with `keys` at `now`, for a
/// zone whose largest TTL is `largest_ttl` seconds.
pub fn plan(keys: &[KeyFacts], timing: Option<&ZskTiming>, largest_ttl: u64, now: u64) -> Plan {
    let (retired, kept): (Vec<&KeyFacts>, Vec<&KeyFacts>) = (keys.iter())
        .filter(|k| !k.ksk)
        .partition(|k| k.times.delete.is_some_and(|t| t <= now));
    let mut plan = Plan {
        retire: retired.iter().map(|k| k.tag).collect(),
        ..Plan::default()
    };
    let Some(timing) = timing else {
        return plan;
    };
    let publish = timing.publish_interval.as_secs();
    let new_key = |activate: u64| KeyTimes {
        created: Some(now),
        publish: Some(now),
        activate: Some(activate),
        ..KeyTimes::default()
    };
    match next_roll(&kept, timing, now) {
        Some(Roll::First) => plan.successor = Some(new_key(now + publish)),
        Some(Roll::Successor { current, due }) if due <= now => {
            let lifetime_end = start(current) + timing.lifetime.as_secs();
            let activate = lifetime_end.max(now + publish);
            let delete = activate + largest_ttl + timing.propagation.as_secs();
            let ending = KeyTimes {
                inactive: Some(activate),
                delete: Some(delete),
                ..current.times
            };
            plan.ending = Some((current.tag, ending));
            plan.successor = Some(new_key(activate));
        }
        Some(Roll::Successor { .. }) | None => {}
    }
    plan
}

/// When the schedule next changes something in `keys` after `now`: a key's time, or the
/// time a successor is due. None when nothing is scheduled.
pub fn next_event(keys: &[KeyFacts], timing: Option<&ZskTiming>, now: u64) -> Option<u64> {
    let times = keys.iter().flat_map(|k| {
        let t = k.times;
        [t.publish, t.activate, t.inactive, t.delete]
    });
    let kept: Vec<&KeyFacts> = keys.iter().collect();
    let due = timing.and_then(|timing| match next_roll(&kept, timing, now)? {
        Roll::First => Some(now),
        Roll::Successor { due, .. } => Some(due),
    });
    times.flatten().chain(due).filter(|&t| t > now).min()
}

/// The next step of the ZSK schedule for `zsks` (ZSKs not retired) at `now`.
enum Roll<'a> {
    /// No ZSK is active or coming: make the zone's first one.
    First,
    /// The active ZSK `current` gets a successor at `due`.
    Successor { current: &'a KeyFacts, due: u64 },
}

/// What comes next for the ZSKs of `keys`: None while a successor is already published and
/// waiting, or the active ZSK already has its end set.
fn next_roll<'a>(keys: &[&'a KeyFacts], timing: &ZskTiming, now: u64) -> Option<Roll<'a>> {
    let zsks = || keys.iter().copied().filter(|k| !k.ksk);
    if zsks().any(|k| k.times.activate.is_some_and(|t| t > now)) {
        return None;
    }
    let Some(current) = zsks()
        .filter(|k| k.times.is_active(now))
        .max_by_key(|k| start(k))
    else {
        return Some(Roll::First);
    };
    if current.times.inactive.is_some() {
        return None;
    }
    let due = (start(current) + timing.lifetime.as_secs())
        .saturating_sub(timing.publish_interval.as_secs());
    Some(Roll::Successor { current, due })
}

/// When a key began to sign: its `Activate`, else its `Created`; a key with neither is
/// taken as old, so a ZSK of unknown age is rolled at once.
fn start(key: &KeyFacts) -> u64 {
    key.times.activate.or(key.times.created).unwrap_or(0)
}

/// Loads the zone's keys from `dir` and carries out what the schedule says at `now`
/// (retiring, ending and making keys); returns the keys as they then are.
///
/// # Errors
/// A key folder or file that cannot be read, written or understood.
pub fn maintain(
    dir: &Path,
    zone: &Name,
    algorithm: DnssecAlgorithm,
    timing: Option<&ZskTiming>,
    largest_ttl: u64,
    now: u64,
) -> Result<Vec<SigningKey>, KeyError> {
    let keys = load_or_generate(dir, zone, algorithm)?;
    let facts: Vec<KeyFacts> = keys.iter().map(KeyFacts::of).collect();
    let plan = plan(&facts, timing, largest_ttl, now);
    if plan.is_empty() {
        return Ok(keys);
    }
    for tag in &plan.retire {
        retire_key(dir, zone, algorithm, *tag)?;
        info!("zone {zone}: ZSK {tag} withdrawn, its files moved to retired/");
    }
    // The old key's end first: should the successor not get written, the 257 keys sign
    // once it ends, and the next run makes a new first ZSK.
    if let Some((tag, times)) = plan.ending
        && let Some(key) = keys.iter().find(|k| k.tag() == tag)
    {
        set_times(dir, zone, key, times)?;
    }
    if let Some(times) = plan.successor {
        let key = keys::add(dir, zone, algorithm, ZSK_FLAGS, times, &keys)?;
        info!(
            "zone {zone}: new ZSK {} published, signing from {}",
            key.tag(),
            times.activate.map_or_else(String::new, keys::stamp)
        );
    }
    load_or_generate(dir, zone, algorithm)
}

#[cfg(test)]
mod tests;
